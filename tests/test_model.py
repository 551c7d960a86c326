"""The generic PerceiverIO: assembling a model for a new modality, encode-once/decode-many, invariances."""

from __future__ import annotations

import pytest
import torch

from perceiverkit import (
    CrossAttentionDecoder,
    DecoderConfig,
    EncoderConfig,
    PerceiverEncoder,
    PerceiverIO,
    PositionEncodingConfig,
    ProjectionDecoder,
)


def point_model(queries: str = "fourier", concat: bool = False) -> PerceiverIO:
    """A model for raw (B, N, 6) feature arrays with an 8×8 output grid."""
    torch.manual_seed(0)
    encoder = PerceiverEncoder(
        EncoderConfig(num_latents=6, d_latents=32, num_self_attends_per_block=2, num_self_attention_heads=4,
                      num_cross_attention_heads=1, attention_dropout=0.0),
        input_channels=6,
    )
    pos = (PositionEncodingConfig(kind="fourier", num_bands=4, max_resolution=(8, 8), project_pos_dim=16)
           if queries == "fourier" else PositionEncodingConfig(kind="trainable", num_channels=16))
    decoder = CrossAttentionDecoder(
        DecoderConfig(output_index_dims=(8, 8), query_channels=16 + (6 if concat else 0), output_channels=3,
                      queries=pos, num_heads=2, concat_preprocessed_input=concat, attention_dropout=0.0),
        latent_channels=32, input_channels=6,
    )
    return PerceiverIO(encoder, decoder).eval()


@pytest.mark.parametrize("queries", ["fourier", "trainable"])
def test_chunked_decoding_from_cached_latents_equals_full(queries):
    model = point_model(queries)
    x = torch.randn(2, 50, 6)
    with torch.no_grad():
        full = model(x).logits
        encoded = model.encode(x)
        chunks = [model.decode(encoded, torch.arange(i, min(i + 10, 64)))[0] for i in range(0, 64, 10)]
    assert full.shape == (2, 64, 3)
    torch.testing.assert_close(torch.cat(chunks, dim=1), full, rtol=1e-5, atol=1e-6)


def test_per_example_output_points():
    model = point_model()
    x = torch.randn(2, 50, 6)
    points = torch.tensor([[3, 60], [0, 9]])
    with torch.no_grad():
        full = model(x).logits
        picked = model(x, output_points=points).logits
    torch.testing.assert_close(picked[0], full[0, [3, 60]])
    torch.testing.assert_close(picked[1], full[1, [0, 9]])


def test_concat_preprocessed_input_uses_matching_inputs():
    model = point_model(concat=True)
    x = torch.randn(2, 64, 6)
    with torch.no_grad():
        full = model(x).logits
        picked = model(x, output_points=torch.tensor([5, 7])).logits
    torch.testing.assert_close(picked, full[:, [5, 7]], rtol=1e-5, atol=1e-6)


def test_latents_do_not_depend_on_input_order_without_positions():
    model = point_model()
    x = torch.randn(2, 30, 6)
    perm = torch.randperm(30)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x).latents, model.encode(x[:, perm]).latents, rtol=1e-5, atol=1e-5)


def test_padding_does_not_change_the_result():
    model = point_model()
    x = torch.randn(1, 20, 6)
    padded = torch.cat([x, 100 * torch.randn(1, 7, 6)], dim=1)
    mask = torch.tensor([[True] * 20 + [False] * 7])
    with torch.no_grad():
        torch.testing.assert_close(model(padded, attention_mask=mask).logits, model(x).logits, rtol=1e-5, atol=1e-5)


def test_projection_decoder_averages_latents():
    encoder = PerceiverEncoder(EncoderConfig(num_latents=4, d_latents=8, num_self_attends_per_block=1,
                                             num_self_attention_heads=1, num_cross_attention_heads=1), input_channels=3)
    model = PerceiverIO(encoder, ProjectionDecoder(8, 5)).eval()
    x = torch.randn(2, 9, 3)
    with torch.no_grad():
        out = model(x)
        expected = model.decoder.classifier(out.last_hidden_state.mean(1))
    torch.testing.assert_close(out.logits, expected)


def test_attentions_and_hidden_states_are_returned():
    model = point_model()
    out = model(torch.randn(2, 10, 6), output_attentions=True, output_hidden_states=True)
    assert [tuple(a.shape) for a in out.cross_attentions] == [(2, 1, 6, 10), (2, 2, 64, 6)]
    assert [tuple(a.shape) for a in out.attentions] == [(2, 4, 6, 6)] * 2
    assert len(out.hidden_states) == 3


@pytest.mark.parametrize("bad,error,match", [
    (torch.randn(2, 10), ValueError, r"\(batch, index, channels\)"),
    (torch.randn(2, 10, 5), ValueError, r"\(batch, index, 6\)"),
])
def test_bad_inputs(bad, error, match):
    with pytest.raises(error, match=match):
        point_model()(bad)


def test_bad_masks_and_points():
    model = point_model()
    x = torch.randn(2, 10, 6)
    with pytest.raises(ValueError, match=r"shape \(2, 10\)"):
        model(x, attention_mask=torch.ones(2, 9, dtype=torch.bool))
    with pytest.raises(TypeError, match="0/1 integers or booleans"):
        model(x, attention_mask=torch.ones(2, 10))
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        model(x, output_points=torch.tensor([64]))
    with pytest.raises(TypeError, match="integer tensor"):
        model(x, output_points=torch.tensor([1.0]))


def test_query_width_must_match_config():
    # 1-D Fourier queries with 4 bands: 1 coordinate + 4 sines + 4 cosines = 9 channels.
    fourier = PositionEncodingConfig(kind="fourier", num_bands=4, max_resolution=(4,))
    with pytest.raises(ValueError, match="9 channels wide but DecoderConfig.query_channels is 16"):
        CrossAttentionDecoder(DecoderConfig(output_index_dims=(4,), query_channels=16, output_channels=2,
                                            queries=fourier), latent_channels=8)


def test_gradient_checkpointing_gives_the_same_gradients():
    model = point_model().train()
    x = torch.randn(2, 10, 6)
    model(x).logits.square().sum().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.encoder.gradient_checkpointing = True
    model(x).logits.square().sum().backward()
    for p, g in zip(model.parameters(), expected):
        torch.testing.assert_close(p.grad, g)
