"""Text models converted from Transformers checkpoints give Transformers' logits (the oracle)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import perceiverkit
from perceiverkit import CheckpointMismatchError, ConfigError, MaskedLanguageModel, SequenceClassifier

from ..helpers import relative_error, small_hf_config

# Non-default configurations: each changes one thing Transformers' code branches on.
CONFIGS = {
    "base": {},
    "qk_ne_v": dict(qk_channels=32, v_channels=64),
    "many_heads": dict(num_self_attention_heads=8, num_cross_attention_heads=4, qk_channels=64),
    "num_blocks_3": dict(num_blocks=3),
    "shape_q": dict(cross_attention_shape_for_attention="q"),
    "no_query_residual": dict(use_query_residual=False),
    "gelu_new_widening": dict(hidden_act="gelu_new", self_attention_widening_factor=2, cross_attention_widening_factor=3),
    "relu": dict(hidden_act="relu"),
    "silu_q_v": dict(hidden_act="silu", cross_attention_shape_for_attention="q", v_channels=64),
}

ARCHS = {
    "mlm": (transformers.PerceiverForMaskedLM, MaskedLanguageModel),
    "classifier": (transformers.PerceiverForSequenceClassification, SequenceClassifier),
}


def _batch(length: int = 25) -> tuple[torch.Tensor, torch.Tensor]:
    """Three sequences: full length, padded after 20 and padded after 5."""
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 262, (3, length), generator=gen)
    mask = torch.ones(3, length, dtype=torch.long)
    mask[1, 20:] = 0
    mask[2, 5:] = 0
    return ids, mask


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_same_logits_as_transformers(save_hf, arch, name):
    hf_cls, our_cls = ARCHS[arch]
    hf, directory = save_hf(hf_cls, small_hf_config(**CONFIGS[name]))
    ours = perceiverkit.from_pretrained(directory)
    assert isinstance(ours, our_cls) and not ours.training
    ids, mask = _batch()
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask).logits
        got = ours(input_ids=ids, attention_mask=mask).logits
    if arch == "mlm":  # Transformers decodes all max_position_embeddings positions; we decode the input's.
        assert got.shape == (3, 25, 262) and expected.shape == (3, 40, 262)
        expected = expected[:, :25]
    assert relative_error(got, expected) < 1e-4


def test_inputs_alias_and_no_mask_match_transformers(save_hf):
    hf, directory = save_hf(transformers.PerceiverForMaskedLM, small_hf_config())
    ours = perceiverkit.from_pretrained(directory)
    ids, _ = _batch()
    with torch.no_grad():
        expected = hf(inputs=ids).logits[:, :25]
        assert relative_error(ours(inputs=ids).logits, expected) < 1e-4
        assert relative_error(ours(ids).logits, expected) < 1e-4


def test_mlm_loss_matches_transformers(save_hf):
    hf, directory = save_hf(transformers.PerceiverForMaskedLM, small_hf_config(max_position_embeddings=25))
    ours = perceiverkit.from_pretrained(directory)
    ids, mask = _batch()
    labels = torch.full_like(ids, -100)
    labels[:, 3:9] = ids[:, 3:9]
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask, labels=labels).loss
        got = ours(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert abs(float(got) - float(expected)) < 1e-4 * abs(float(expected))


@pytest.mark.parametrize("labels_kind", ["single", "multi", "regression"])
def test_classifier_losses_match_transformers(save_hf, labels_kind):
    num_labels = 1 if labels_kind == "regression" else 3
    config = small_hf_config(num_labels=num_labels)
    hf, directory = save_hf(transformers.PerceiverForSequenceClassification, config)
    ours = perceiverkit.from_pretrained(directory)
    ids, mask = _batch()
    labels = {"single": torch.tensor([0, 2, 1]), "multi": torch.tensor([[1.0, 0, 1], [0, 0, 1], [1, 1, 0]]),
              "regression": torch.tensor([0.5, -1.0, 2.0])}[labels_kind]
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask, labels=labels).loss
        got = ours(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert abs(float(got) - float(expected)) < 1e-4 * abs(float(expected))


def test_label_names_carry_over(save_hf):
    config = small_hf_config(id2label={0: "neg", 1: "neutral", 2: "pos"}, label2id={"neg": 0, "neutral": 1, "pos": 2})
    _, directory = save_hf(transformers.PerceiverForSequenceClassification, config)
    ours = perceiverkit.from_pretrained(directory)
    assert ours.config.labels == ("neg", "neutral", "pos") and ours.config.num_labels == 3


def test_pickle_checkpoint_loads_with_weights_only(save_hf, monkeypatch):
    hf, directory = save_hf(transformers.PerceiverForMaskedLM, small_hf_config(), pickle_format=True)
    assert not (directory / "model.safetensors").exists()
    seen = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: seen.append(k.get("weights_only")) or real_load(*a, **k))
    ours = perceiverkit.from_pretrained(directory)
    assert seen == [True]
    ids, mask = _batch()
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask).logits[:, :25]
        assert relative_error(ours(input_ids=ids, attention_mask=mask).logits, expected) < 1e-4


def _edit_weights(directory: Path, edit) -> None:
    path = directory / "model.safetensors"
    state = load_file(path)
    edit(state)
    save_file(state, path)


def test_mismatches_are_reported_by_name(save_hf):
    _, directory = save_hf(transformers.PerceiverForMaskedLM, small_hf_config())

    def edit(state):
        del state["perceiver.decoder.output_position_encodings.position_embeddings"]
        state["perceiver.extra.weight"] = torch.zeros(3)
        state["perceiver.embeddings.latents"] = torch.zeros(9, 64)

    _edit_weights(directory, edit)
    with pytest.raises(CheckpointMismatchError) as info:
        perceiverkit.from_pretrained(directory)
    report, message = info.value.report, str(info.value)
    assert report.missing == ["perceiver.decoder.output_position_encodings.position_embeddings"]
    assert report.unexpected == ["perceiver.extra.weight"]
    assert report.mismatched == ["perceiver.encoder.latents (checkpoint (9, 64), model (8, 64))"]
    for name in ("output_position_encodings", "perceiver.extra.weight", "perceiver.encoder.latents"):
        assert name in message


def test_unsupported_architecture_is_named(save_hf):
    _, directory = save_hf(transformers.PerceiverForMaskedLM, small_hf_config())
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())
    config["architectures"] = ["PerceiverForSomethingElse"]
    config_path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="PerceiverForSomethingElse.*PerceiverForMaskedLM"):
        perceiverkit.from_pretrained(directory)


def test_invalid_config_value_is_named(save_hf):
    _, directory = save_hf(transformers.PerceiverForMaskedLM, small_hf_config())
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())
    config["cross_attention_shape_for_attention"] = "sideways"
    config_path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="cross_attention_shape_for_attention.*sideways"):
        perceiverkit.from_pretrained(directory)
