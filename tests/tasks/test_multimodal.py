"""The multimodal autoencoder: generic modality handling, chunked decoding, training losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from perceiverkit import EncoderConfig, MultimodalAutoencoder, MultimodalAutoencoderConfig
from perceiverkit.tasks import autoencoding_targets


@pytest.fixture(scope="module")
def model() -> MultimodalAutoencoder:
    torch.manual_seed(0)
    return MultimodalAutoencoder(MultimodalAutoencoderConfig(
        num_frames=2, image_size=8, image_patch_size=4, image_num_bands=4, audio_samples_per_frame=16,
        samples_per_patch=4, audio_num_bands=6, num_labels=5, label_query_channels=16, output_num_channels=12,
        encoder=EncoderConfig(num_latents=8, d_latents=32, num_self_attends_per_block=1, num_self_attention_heads=2,
                              num_cross_attention_heads=1, attention_dropout=0.0))).eval()


def _inputs(batch=2):
    return {"image": torch.rand(batch, 2, 3, 8, 8), "audio": torch.randn(batch, 32), "label": F.one_hot(
        torch.arange(batch) % 5, 5).float()}


def test_chunk_size_does_not_change_reconstruction(model):
    inputs = _inputs()
    a, b = model.reconstruct(inputs, chunk_size=3), model.reconstruct(inputs, chunk_size=1000)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


def test_modalities_can_be_skipped_or_fully_decoded(model):
    inputs = _inputs()
    with torch.no_grad():
        only_label = model(inputs, {"image": torch.empty(0, dtype=torch.long), "audio": torch.empty(0, dtype=torch.long)})
        everything = model(inputs, {"image": None, "audio": None})
    assert sorted(only_label.logits) == ["label"]
    assert everything.logits["image"].shape == (2, 128, 3) and everything.logits["audio"].shape == (2, 32)
    torch.testing.assert_close(only_label.logits["label"], everything.logits["label"], rtol=1e-5, atol=1e-6)


def test_label_is_masked_so_it_does_not_leak(model):
    inputs = _inputs()
    other = dict(inputs, label=torch.roll(inputs["label"], 1, dims=1))
    with torch.no_grad():
        torch.testing.assert_close(model(inputs, {"image": None, "audio": None}).logits["label"],
                                   model(other, {"image": None, "audio": None}).logits["label"])


def test_loss_on_sampled_points_matches_closed_form(model):
    inputs = _inputs()
    points = model.sample_points(num_image=10, num_audio=3, generator=torch.Generator().manual_seed(0))
    logits = model(inputs, points).logits
    total, terms = model.loss(inputs, logits, points)
    pixels = inputs["image"].permute(0, 1, 3, 4, 2).reshape(2, -1, 3)[:, points["image"]]
    audio = inputs["audio"].reshape(2, 8, 4)[:, points["audio"]].reshape(2, -1)
    torch.testing.assert_close(terms["image"], (logits["image"] - pixels).abs().mean())
    torch.testing.assert_close(terms["audio"], (logits["audio"] - audio).abs().mean())
    torch.testing.assert_close(terms["label"], F.cross_entropy(logits["label"], torch.tensor([0, 1])))
    torch.testing.assert_close(total, 0.03 * terms["image"] + terms["audio"] + 0.0001 * terms["label"])
    total.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
    model.zero_grad()


def test_targets_follow_output_order(model):
    video = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(1, 2, 3, 8, 8)
    targets = autoencoding_targets({"image": video, "audio": torch.zeros(1, 32), "label": torch.eye(5)[[2]]},
                                   {"image": torch.tensor([0, 65])}, model.config)
    # flat point 65 = frame 1, row 0, column 1; its RGB values are the three channels there
    torch.testing.assert_close(targets["image"][0, 1], video[0, 1, :, 0, 1])
    assert targets["label"].tolist() == [2]


@pytest.mark.parametrize("bad,error,match", [
    ({"image": torch.rand(1, 2, 3, 8, 8), "audio": torch.randn(1, 32)}, ValueError, r"missing: \['label'\]"),
    ({"image": torch.rand(1, 2, 3, 8, 8), "audio": torch.randn(1, 32), "label": torch.zeros(1, 5),
      "text": torch.zeros(1)}, ValueError, r"unknown: \['text'\]"),
    ({"image": torch.rand(1, 2, 3, 8, 8), "audio": torch.randn(1, 30), "label": torch.zeros(1, 5)}, ValueError,
     "multiple of samples_per_patch"),
    ({"image": torch.rand(1, 2, 3, 8, 8), "audio": torch.randn(1, 32, 2), "label": torch.zeros(1, 5)}, ValueError,
     "mono"),
    ({"image": torch.rand(1, 2, 3, 8, 8), "audio": torch.randn(1, 32), "label": torch.zeros(1, 4)}, ValueError,
     r"labels must have shape \(batch, 5\)"),
    ({"image": torch.rand(2, 2, 3, 8, 8), "audio": torch.randn(1, 32), "label": torch.zeros(1, 5)}, ValueError,
     "batch size"),
    (torch.zeros(3), TypeError, "dict keyed by modality"),
])
def test_bad_inputs(model, bad, error, match):
    with pytest.raises(error, match=match):
        model(bad, {"image": torch.tensor([0]), "audio": torch.tensor([0])})


def test_unknown_output_modality(model):
    with pytest.raises(ValueError, match=r"unknown modalities \['depth'\]"):
        model(_inputs(), {"depth": torch.tensor([0])})


def test_training_requires_points(model):
    model.train()
    try:
        with pytest.raises(ValueError, match="subsampled_output_points"):
            model(_inputs())
    finally:
        model.eval()
