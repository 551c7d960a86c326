"""Image classifiers and optical flow converted from Transformers give Transformers' outputs (the oracle)."""

from __future__ import annotations

import pytest
import torch
import transformers

import perceiverkit
from perceiverkit import ImageClassifier, OpticalFlow

from ..helpers import relative_error, small_hf_config

T = transformers
CLASSIFIERS = {
    "learned": T.PerceiverForImageClassificationLearned,
    "fourier": T.PerceiverForImageClassificationFourier,
    "conv": T.PerceiverForImageClassificationConvProcessing,
}
# Fourier pixels give 3 + 258 = 261 input channels (prime factors 3·3·29): one cross-attention head.
VARIANTS = {
    "base": {},
    "blocks_heads": dict(num_blocks=2, num_self_attention_heads=8, qk_channels=32, v_channels=64),
    "shape_q_relu": dict(cross_attention_shape_for_attention="q", hidden_act="relu", use_query_residual=False),
}


def _config(kind: str, **extra):
    cross_heads = 1 if kind == "fourier" else 2
    return small_hf_config(image_size=16, num_labels=5, num_cross_attention_heads=cross_heads, **extra)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("kind", sorted(CLASSIFIERS))
def test_classifier_logits_match(save_hf, kind, variant):
    hf, directory = save_hf(CLASSIFIERS[kind], _config(kind, **VARIANTS[variant]))
    ours = perceiverkit.from_pretrained(directory)
    assert isinstance(ours, ImageClassifier)
    pixels = torch.randn(2, 3, 32 if kind == "conv" else 16, 32 if kind == "conv" else 16)
    with torch.no_grad():
        expected = hf(pixel_values=pixels).logits
        got = ours(pixel_values=pixels).logits
    assert got.shape == (2, 5)
    assert relative_error(got, expected) < 1e-4


@pytest.mark.parametrize("kind", sorted(CLASSIFIERS) + ["flow"])
def test_both_encoder_cross_attention_paths_match_transformers(save_hf, kind, attention_path):
    """The encoder attends to [features, positions] in their basis space (accel/factored.py, on the fast path) or
    projects them as Transformers does (the reference path); both give Transformers' outputs, for every image
    preprocessor and for flow."""
    from perceiverkit.accel import choose_path

    if kind == "flow":
        hf, directory = save_hf(T.PerceiverForOpticalFlow, small_hf_config(train_size=[12, 16]))
        inputs = dict(inputs=torch.randn(2, 2, 27, 12, 16))
    else:
        hf, directory = save_hf(CLASSIFIERS[kind], _config(kind))
        inputs = dict(pixel_values=torch.randn(2, 3, 32 if kind == "conv" else 16, 32 if kind == "conv" else 16))
    ours = perceiverkit.from_pretrained(directory)
    block = ours.perceiver.encoder.cross_attention
    pre = ours.perceiver.preprocess(next(iter(inputs.values())))
    path = choose_path(block, pre.encoder_inputs, ours.perceiver.encoder.config.num_latents)
    assert (path == "factored") == (attention_path == "fast")
    with torch.no_grad():
        expected, got = hf(**inputs).logits, ours(**inputs).logits
    assert relative_error(got, expected) < 1e-4


def test_learned_positions_interpolate_like_transformers(save_hf):
    hf, directory = save_hf(CLASSIFIERS["learned"], _config("learned"))
    ours = perceiverkit.from_pretrained(directory)
    pixels = torch.randn(2, 3, 20, 24)
    with torch.no_grad():
        expected = hf(pixel_values=pixels, interpolate_pos_encoding=True).logits
        got = ours(pixel_values=pixels, interpolate_pos_encoding=True).logits
    assert relative_error(got, expected) < 1e-4
    with pytest.raises(ValueError, match="16×16 grid but the input gives 20×24.*interpolate_pos_encoding=True"):
        ours(pixel_values=pixels)


def test_classifier_loss_matches(save_hf):
    hf, directory = save_hf(CLASSIFIERS["conv"], _config("conv"))
    ours = perceiverkit.from_pretrained(directory)
    pixels, labels = torch.randn(3, 3, 32, 32), torch.tensor([0, 4, 2])
    with torch.no_grad():
        expected = hf(pixel_values=pixels, labels=labels).loss
        got = ours(pixel_values=pixels, labels=labels).loss
    assert abs(float(got) - float(expected)) < 1e-4 * float(expected)


@pytest.mark.parametrize("extra", [{}, dict(num_self_attention_heads=8, num_blocks=2, hidden_act="gelu_new")],
                         ids=["base", "heads_blocks"])
def test_optical_flow_matches(save_hf, extra):
    hf, directory = save_hf(T.PerceiverForOpticalFlow, small_hf_config(train_size=[12, 16], **extra))
    ours = perceiverkit.from_pretrained(directory)
    assert isinstance(ours, OpticalFlow)
    patches = torch.randn(2, 2, 27, 12, 16)
    with torch.no_grad():
        expected = hf(inputs=patches).logits
        out = ours(patches)
    assert out.logits.shape == expected.shape == (2, 12, 16, 2)
    assert relative_error(out.logits, expected) < 1e-4
    torch.testing.assert_close(out.flow, out.logits * 20)


def test_vision_presets_have_the_published_sizes():
    base = dict(num_latents=512, d_latents=1024, num_blocks=8, num_self_attends_per_block=6, num_cross_attention_heads=1,
                num_self_attention_heads=8, num_labels=1000)
    references = {
        "vision-perceiver-learned": (T.PerceiverForImageClassificationLearned, dict(base, image_size=224), 62_255_848),
        "vision-perceiver-fourier": (T.PerceiverForImageClassificationFourier, base, 48_440_627),
        "vision-perceiver-conv": (T.PerceiverForImageClassificationConvProcessing, base, 48_646_522),
        "optical-flow-perceiver": (T.PerceiverForOpticalFlow, dict(num_latents=2048, d_latents=512, d_model=322,
                                   num_self_attends_per_block=24, num_self_attention_heads=16,
                                   num_cross_attention_heads=1), 41_057_134),
    }
    with torch.device("meta"):
        for name, (cls, config, count) in references.items():
            ours = perceiverkit.create_model(name)
            theirs = cls(T.PerceiverConfig(**config))
            assert ours.num_parameters() == count == sum(p.numel() for p in theirs.parameters()), name
