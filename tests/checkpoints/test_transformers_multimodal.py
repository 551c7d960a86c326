"""The multimodal autoencoder converted from Transformers gives Transformers' outputs on subsampled points."""

from __future__ import annotations

import pytest
import torch
import transformers

import perceiverkit
from perceiverkit import MultimodalAutoencoder

from ..helpers import relative_error, small_hf_config


def _hf_config(**extra):
    base = dict(num_latents=8, d_latents=32, num_self_attends_per_block=1, num_self_attention_heads=2,
                num_cross_attention_heads=1, num_frames=2, audio_samples_per_frame=16, samples_per_patch=4,
                image_size=8, output_shape=[1, 2, 8, 8], num_labels=5, output_num_channels=12)
    base.update(extra)
    return small_hf_config(**base)


def _inputs(batch: int = 2):
    gen = torch.Generator().manual_seed(3)
    return {"image": torch.rand(batch, 2, 3, 8, 8, generator=gen), "audio": torch.randn(batch, 32, 1, generator=gen),
            "label": torch.zeros(batch, 5)}


@pytest.mark.parametrize("extra", [{}, dict(num_blocks=2, hidden_act="gelu_new", num_self_attention_heads=4)],
                         ids=["base", "blocks_heads"])
def test_subsampled_outputs_match_transformers(save_hf, extra):
    hf, directory = save_hf(transformers.PerceiverForMultimodalAutoencoding, _hf_config(**extra))
    ours = perceiverkit.from_pretrained(directory)
    assert isinstance(ours, MultimodalAutoencoder) and ours.num_parameters() == hf.num_parameters()
    inputs = _inputs()
    points = {"image": torch.tensor([0, 5, 77, 127]), "audio": torch.tensor([1, 3, 7]), "label": None}
    with torch.no_grad():
        expected = hf(inputs=inputs, subsampled_output_points=points).logits
        got = ours(inputs, points).logits
    assert sorted(got) == sorted(expected) == ["audio", "image", "label"]
    assert got["image"].shape == (2, 4, 3) and got["audio"].shape == (2, 12) and got["label"].shape == (2, 5)
    for name in expected:
        assert relative_error(got[name], expected[name]) < 1e-4, name


def test_full_reconstruction_equals_subsampled_points(save_hf):
    hf, directory = save_hf(transformers.PerceiverForMultimodalAutoencoding, _hf_config())
    ours = perceiverkit.from_pretrained(directory)
    inputs = _inputs(1)
    image_points = torch.arange(0, 128, 9)
    audio_points = torch.arange(8)
    with torch.no_grad():
        full = ours.reconstruct(inputs, chunk_size=5)
        expected = hf(inputs=inputs, subsampled_output_points={"image": image_points, "audio": audio_points,
                                                                "label": None}).logits
    assert full["image"].shape == (1, 2, 8, 8, 3) and full["audio"].shape == (1, 32)
    assert relative_error(full["image"].reshape(1, -1, 3)[:, image_points], expected["image"]) < 1e-4
    assert relative_error(full["audio"], expected["audio"]) < 1e-4
    assert relative_error(full["label"], expected["label"]) < 1e-4


def test_preset_has_the_published_size():
    with torch.device("meta"):
        ours = perceiverkit.create_model("multimodal-perceiver")
        theirs = transformers.PerceiverForMultimodalAutoencoding(transformers.PerceiverConfig(
            num_latents=784, d_latents=512, d_model=704, num_self_attends_per_block=8, num_self_attention_heads=8,
            num_cross_attention_heads=1, num_labels=700))
    assert ours.num_parameters() == 19_858_855 == sum(p.numel() for p in theirs.parameters())


def test_both_encoder_cross_attention_paths_match_transformers(save_hf, attention_path):
    """Video and audio are attended to in their own bases (the label, masked, is projected) on the fast path, or
    everything is projected as Transformers does on the reference path; both give Transformers' outputs."""
    from perceiverkit.accel import FactoredInputs, SegmentedInputs, choose_path

    hf, directory = save_hf(transformers.PerceiverForMultimodalAutoencoding, _hf_config())
    ours = perceiverkit.from_pretrained(directory)
    block = ours.perceiver.encoder.cross_attention
    inputs = _inputs()
    view = ours.perceiver.preprocess(inputs).encoder_inputs
    if attention_path == "fast":
        assert isinstance(view, SegmentedInputs)
        assert [type(s) for s in view.segments] == [FactoredInputs, FactoredInputs, torch.Tensor]  # audio, image, label
        assert choose_path(block, view, ours.perceiver.encoder.config.num_latents) == "segmented"
    else:  # the reference preprocessors concatenate features, positions and modalities themselves
        assert isinstance(view, torch.Tensor)
    points = {"image": torch.tensor([0, 5, 77, 127]), "audio": torch.tensor([1, 3, 7]), "label": None}
    with torch.no_grad():
        expected = hf(inputs=inputs, subsampled_output_points=points).logits
        got = ours(inputs, points).logits
    for name in expected:
        assert relative_error(got[name], expected[name]) < 1e-4, name
