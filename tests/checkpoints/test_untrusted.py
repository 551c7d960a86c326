"""Untrusted checkpoint files: a malicious pickle is refused without running its payload."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
import transformers

import perceiverkit

from ..helpers import small_hf_config


class _Payload:
    """Unpickling this calls ``exec`` — the classic pickle attack."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_malicious_pickle_is_refused_and_payload_never_runs(save_hf, tmp_path):
    _, directory = save_hf(transformers.PerceiverForMaskedLM, small_hf_config(), pickle_format=True)
    marker = tmp_path / "payload-ran"
    state = torch.load(directory / "pytorch_model.bin", weights_only=True)
    state["perceiver.embeddings.latents"] = _Payload(str(marker))  # type: ignore[assignment]
    with open(directory / "pytorch_model.bin", "wb") as f:
        pickle.dump(state, f)
    # The attack is real: plain unpickling runs it.
    with open(directory / "pytorch_model.bin", "rb") as f:
        pickle.load(f)
    assert marker.read_text() == "pwned"
    marker.unlink()
    with pytest.raises(ValueError, match="refusing to load .*pytorch_model.bin"):
        perceiverkit.from_pretrained(directory)
    assert not marker.exists(), "the pickle payload ran"


def test_safetensors_preferred_over_pickle(save_hf, tmp_path):
    hf, directory = save_hf(transformers.PerceiverForMaskedLM, small_hf_config())
    marker = tmp_path / "payload-ran"
    with open(directory / "pytorch_model.bin", "wb") as f:  # a booby-trapped file beside the safe one
        pickle.dump({"x": _Payload(str(marker))}, f)
    perceiverkit.from_pretrained(directory)
    assert not marker.exists()


def test_config_with_wrong_types_is_named(save_hf):
    _, directory = save_hf(transformers.PerceiverForMaskedLM, small_hf_config())
    config = json.loads((directory / "config.json").read_text())
    config["num_latents"] = "many"
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(perceiverkit.ConfigError, match="num_latents must be a positive integer, got 'many'"):
        perceiverkit.from_pretrained(directory)


def test_config_that_is_not_json(save_hf):
    _, directory = save_hf(transformers.PerceiverForMaskedLM, small_hf_config())
    (directory / "config.json").write_text("{not json")
    with pytest.raises(perceiverkit.ConfigError, match="not valid JSON"):
        perceiverkit.from_pretrained(directory)
