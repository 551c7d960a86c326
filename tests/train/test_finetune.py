"""Fine-tuning: a classifier initialised from a masked language model's checkpoint takes over its encoder."""

from __future__ import annotations

import torch

import perceiverkit as pk
from perceiverkit.train import build_model, load_train_config, transfer_weights

ENCODER = pk.EncoderConfig(num_latents=4, d_latents=16, num_self_attends_per_block=1, num_self_attention_heads=2,
                           num_cross_attention_heads=1)


def test_classifier_from_mlm_checkpoint(tmp_path):
    torch.manual_seed(0)
    mlm = pk.MaskedLanguageModel(pk.MaskedLanguageModelConfig(d_model=16, max_position_embeddings=32, encoder=ENCODER))
    mlm.save_pretrained(tmp_path / "mlm")
    config = load_train_config("text-classification", None, [
        f"model.init_from={tmp_path / 'mlm'}", "model.config.num_labels=3", "model.config.d_model=16",
        "model.config.max_position_embeddings=32", "model.config.encoder.num_latents=4",
        "model.config.encoder.d_latents=16", "model.config.encoder.num_self_attends_per_block=1",
        "model.config.encoder.num_self_attention_heads=2", "model.config.encoder.num_cross_attention_heads=1"])
    classifier = build_model(config)
    source = mlm.state_dict()
    for name, tensor in classifier.state_dict().items():
        if name.startswith(("perceiver.encoder.", "perceiver.preprocessor.")):
            assert torch.equal(tensor, source[name]), name
    assert not torch.equal(classifier.state_dict()["perceiver.decoder.final_projection.weight"][:1],
                           torch.zeros(1, 16))


def test_transfer_reports_what_was_kept():
    a = pk.MaskedLanguageModel(pk.MaskedLanguageModelConfig(d_model=16, max_position_embeddings=32, encoder=ENCODER))
    b = pk.SequenceClassifier(pk.SequenceClassifierConfig(d_model=16, max_position_embeddings=32, encoder=ENCODER,
                                                          num_labels=2))
    copied, kept = transfer_weights(a, b)
    assert "perceiver.encoder.latents" in copied and "perceiver.decoder.final_projection.weight" in kept
