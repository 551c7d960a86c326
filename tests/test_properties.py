"""Property-based tests: random valid configurations and shapes run forward and backward with finite results,
and the invariances that must hold do."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perceiverkit import (
    CrossAttentionDecoder,
    DecoderConfig,
    EncoderConfig,
    PerceiverEncoder,
    PerceiverIO,
    PositionEncodingConfig,
)
from perceiverkit.layers import ACTIVATIONS

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def models(draw) -> tuple[PerceiverIO, int]:
    heads = draw(st.sampled_from([1, 2, 4]))
    width = heads * draw(st.integers(1, 6))
    input_channels = draw(st.integers(1, 9))
    shape = draw(st.sampled_from(["kv", "q"]))
    encoder = EncoderConfig(
        num_latents=draw(st.integers(1, 8)), d_latents=width, num_blocks=draw(st.integers(1, 2)),
        num_self_attends_per_block=draw(st.integers(1, 2)), num_self_attention_heads=heads,
        num_cross_attention_heads=1 if shape == "kv" else heads,
        qk_channels=draw(st.sampled_from([None, heads * 2])), v_channels=draw(st.sampled_from([None, heads * 3])),
        cross_attention_shape_for_attention=shape,
        self_attention_widening_factor=draw(st.integers(1, 2)),
        cross_attention_widening_factor=draw(st.integers(1, 2)),
        use_query_residual=draw(st.booleans()), activation=draw(st.sampled_from(sorted(ACTIVATIONS))),
        attention_dropout=0.0,
    )
    fourier = draw(st.booleans())
    queries = (PositionEncodingConfig(kind="fourier", num_bands=2, max_resolution=(5,)) if fourier
               else PositionEncodingConfig(kind="trainable", num_channels=6))
    query_channels = 5 if fourier else 6
    decoder = CrossAttentionDecoder(
        DecoderConfig(output_index_dims=(5,), query_channels=query_channels, output_channels=3, queries=queries,
                      num_heads=1, widening_factor=draw(st.integers(1, 2)), attention_dropout=0.0,
                      use_query_residual=draw(st.booleans())),
        latent_channels=width)
    torch.manual_seed(draw(st.integers(0, 1000)))
    return PerceiverIO(PerceiverEncoder(encoder, input_channels), decoder).eval(), input_channels


@SETTINGS
@given(models(), st.integers(1, 3), st.integers(1, 20))
def test_forward_and_backward_are_finite(model_and_width, batch, length):
    model, channels = model_and_width
    x = torch.randn(batch, length, channels, requires_grad=True)
    out = model(x).logits
    assert out.shape == (batch, 5, 3) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert torch.isfinite(x.grad).all()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


@SETTINGS
@given(models(), st.lists(st.integers(1, 12), min_size=1, max_size=3), st.integers(0, 5))
def test_output_is_independent_of_padding(model_and_width, lengths, extra):
    model, channels = model_and_width
    total = max(lengths) + extra
    padded = torch.randn(len(lengths), total, channels) * 10  # garbage in the padding
    mask = torch.zeros(len(lengths), total, dtype=torch.bool)
    for row, n in enumerate(lengths):
        mask[row, :n] = True
    with torch.no_grad():
        batched = model(padded, attention_mask=mask).logits
        for row, n in enumerate(lengths):
            alone = model(padded[row:row + 1, :n]).logits
            torch.testing.assert_close(batched[row:row + 1], alone, rtol=1e-4, atol=1e-5)


@SETTINGS
@given(models(), st.integers(2, 15), st.randoms(use_true_random=False))
def test_latents_are_invariant_to_input_order(model_and_width, length, rng):
    model, channels = model_and_width
    x = torch.randn(2, length, channels)
    order = list(range(length))
    rng.shuffle(order)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x).latents, model.encode(x[:, order]).latents, rtol=1e-4, atol=1e-5)
