"""Our own format: save_pretrained → from_pretrained round-trips exactly through safetensors."""

from __future__ import annotations

import json

import pytest
import torch

import perceiverkit
from perceiverkit import ConfigError, EncoderConfig, MaskedLanguageModelConfig, SequenceClassifierConfig
from perceiverkit.checkpoints import CheckpointMismatchError

SMALL = EncoderConfig(num_latents=4, d_latents=32, num_self_attends_per_block=1, num_self_attention_heads=2,
                      num_cross_attention_heads=1, qk_channels=16)


@pytest.mark.parametrize("model", [
    lambda: perceiverkit.MaskedLanguageModel(MaskedLanguageModelConfig(d_model=16, max_position_embeddings=12, encoder=SMALL)),
    lambda: perceiverkit.SequenceClassifier(SequenceClassifierConfig(
        d_model=16, max_position_embeddings=12, encoder=SMALL, num_labels=2, labels=("no", "yes"),
        problem_type="single_label_classification")),
], ids=["mlm", "classifier"])
def test_round_trip(tmp_path, model):
    torch.manual_seed(0)
    original = model().eval()
    original.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["model.safetensors", "perceiverkit.json"]
    loaded = perceiverkit.from_pretrained(tmp_path / "ckpt")
    assert type(loaded) is type(original) and loaded.config == original.config and not loaded.training
    for (name, a), (_, b) in zip(original.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    ids = torch.randint(0, 262, (2, 12))
    with torch.no_grad():
        assert torch.equal(original(ids).logits, loaded(ids).logits)


def test_tied_embedding_stays_tied_after_loading(tmp_path):
    model = perceiverkit.MaskedLanguageModel(MaskedLanguageModelConfig(d_model=16, max_position_embeddings=12, encoder=SMALL))
    model.save_pretrained(tmp_path)
    loaded = perceiverkit.MaskedLanguageModel.from_pretrained(tmp_path)
    with torch.no_grad():
        loaded.perceiver.preprocessor.token_embedding.weight.zero_()
        logits = loaded(torch.tensor([[7, 8, 9]])).logits
    assert torch.equal(logits, loaded.perceiver.postprocessor.bias.expand_as(logits))
    assert "perceiver.postprocessor._embedding.weight" not in loaded.state_dict()


def test_wrong_class_is_refused(tmp_path):
    perceiverkit.MaskedLanguageModel(MaskedLanguageModelConfig(d_model=16, max_position_embeddings=12, encoder=SMALL)).save_pretrained(tmp_path)
    with pytest.raises(TypeError, match="MaskedLanguageModel, not a SequenceClassifier"):
        perceiverkit.SequenceClassifier.from_pretrained(tmp_path)


def test_bad_saved_config_is_named(tmp_path):
    perceiverkit.MaskedLanguageModel(MaskedLanguageModelConfig(d_model=16, max_position_embeddings=12, encoder=SMALL)).save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "perceiverkit.json").read_text())
    meta["config"]["encoder"]["num_latnets"] = 3
    (tmp_path / "perceiverkit.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="num_latnets"):
        perceiverkit.from_pretrained(tmp_path)
    meta["config"]["encoder"].pop("num_latnets")
    meta["config"]["encoder"]["num_latents"] = -2
    (tmp_path / "perceiverkit.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="num_latents must be a positive integer"):
        perceiverkit.from_pretrained(tmp_path)


def test_config_change_without_weights_is_a_mismatch(tmp_path):
    perceiverkit.MaskedLanguageModel(MaskedLanguageModelConfig(d_model=16, max_position_embeddings=12, encoder=SMALL)).save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "perceiverkit.json").read_text())
    meta["config"]["max_position_embeddings"] = 13
    (tmp_path / "perceiverkit.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointMismatchError, match="position_embedding.weight"):
        perceiverkit.from_pretrained(tmp_path)


def test_a_failed_save_leaves_no_temporary_files(tmp_path, monkeypatch):
    """An error while saving (here: writing the processor) leaves the folder as it was, without ``.tmp`` files."""
    model = perceiverkit.create_model("perceiver-ar-tiny")

    def fail(directory):
        raise OSError("disk full")

    monkeypatch.setattr(model, "save_processor", fail)
    with pytest.raises(OSError, match="disk full"):
        model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
