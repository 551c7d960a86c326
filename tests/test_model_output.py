"""``PerceiverOutput`` indexes like Transformers' ``ModelOutput``: ``output[0]`` is the logits, or the loss when
labels were given; names of unset fields are not keys. The oracle: Transformers' own output objects for the same
weights and inputs."""

from __future__ import annotations

import pytest
import torch
import transformers

from perceiverkit import MaskedLanguageModel, PerceiverOutput

from .helpers import small_hf_config


def _common_order(ours: list[str], theirs: list[str]) -> tuple[list[str], list[str]]:
    shared = set(ours) & set(theirs)
    return [k for k in ours if k in shared], [k for k in theirs if k in shared]


def test_output_indexes_like_transformers(save_hf):
    hf, directory = save_hf(transformers.PerceiverForMaskedLM, small_hf_config())
    ours = MaskedLanguageModel.from_pretrained(directory)
    ids = torch.randint(6, 262, (2, 40), generator=torch.Generator().manual_seed(0))  # max_position_embeddings
    labels = ids.masked_fill(torch.rand(ids.shape, generator=torch.Generator().manual_seed(1)) < 0.8, -100)
    with torch.no_grad():
        for kwargs in ({}, {"labels": labels}, {"output_hidden_states": True, "output_attentions": True}):
            expected, got = hf(input_ids=ids, **kwargs), ours(ids, **kwargs)
            assert got.keys()[0] == list(expected.keys())[0]  # logits, or loss with labels
            assert torch.allclose(got[0], expected[0], atol=1e-4, rtol=1e-4)
            assert torch.allclose(got["logits"], expected["logits"], atol=1e-4, rtol=1e-4)
            # the fields both have are in the same order (we also return last_hidden_state, after logits)
            mine, theirs = _common_order(got.keys(), list(expected.keys()))
            assert mine == theirs
            assert len(got.to_tuple()) == len(got.keys()) and got[-1] is got.to_tuple()[-1]
            if "labels" in kwargs:
                assert torch.allclose(got[1], expected[1], atol=1e-4, rtol=1e-4)  # the logits come second
            else:
                with pytest.raises(KeyError):  # as Transformers: an unset field is not a key
                    got["loss"]
                with pytest.raises(KeyError):
                    expected["loss"]


def test_subclass_fields_come_after_the_base_fields():
    from perceiverkit import FlowOutput

    out = FlowOutput(logits=torch.zeros(1), flow=torch.ones(1), loss=torch.tensor(2.0))
    assert out.keys() == ["loss", "logits", "flow"] and out[2] is out.flow and out[0:2] == (out.loss, out.logits)
    assert PerceiverOutput(logits=torch.zeros(1))[0] is not None
