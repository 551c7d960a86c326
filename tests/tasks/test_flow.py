"""Optical flow: frame handling, tiling and stitching at any resolution, output points."""

from __future__ import annotations

import pytest
import torch

from perceiverkit import EncoderConfig, OpticalFlow, OpticalFlowConfig
from perceiverkit.model import PerceiverOutput
from perceiverkit.processors.flow import frames_to_patches, tile_starts, tile_weights


@pytest.fixture(scope="module")
def model() -> OpticalFlow:
    torch.manual_seed(0)
    config = OpticalFlowConfig(train_size=(12, 16), num_bands=4, patch_features=8, tile_overlap=4,
                               encoder=EncoderConfig(num_latents=8, d_latents=32, num_self_attends_per_block=1,
                                                     num_self_attention_heads=2, num_cross_attention_heads=1))
    return OpticalFlow(config).eval()


def test_frames_and_patches_give_the_same_flow(model):
    frames = torch.randint(0, 256, (2, 2, 3, 12, 16)).float()
    with torch.no_grad():
        from_frames = model(frames)
        from_patches = model(frames_to_patches(frames))
    torch.testing.assert_close(from_frames.logits, from_patches.logits)
    torch.testing.assert_close(frames_to_patches(frames)[:, :, 12:15], frames / 255 * 2 - 1)  # centre pixel


@pytest.mark.parametrize("size,tile,overlap", [(12, 12, 4), (30, 12, 4), (100, 16, 4), (17, 16, 0)])
def test_tiles_cover_with_overlap(size, tile, overlap):
    starts = tile_starts(size, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == size
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_tile_weights_fall_to_edges():
    w = tile_weights(4, 6)
    assert w.tolist()[0] == [1, 1, 1, 1, 1, 1] and w[1, 1] == 2 and w[1:3, 2:4].eq(2).all()


def test_stitching_reconstructs_a_global_field(model, monkeypatch):
    """If every tile reports its own input coordinates, the stitched flow must be the global coordinates."""

    def fake_tile(patches, *args, **kwargs):
        return PerceiverOutput(logits=patches[:, 0, :2].permute(0, 2, 3, 1))

    monkeypatch.setattr(model, "_run_tile", fake_tile)
    ys, xs = torch.meshgrid(torch.arange(29.0), torch.arange(45.0), indexing="ij")
    patches = torch.zeros(2, 2, 27, 29, 45)
    patches[:, :, 0], patches[:, :, 1] = xs, ys
    logits = model(patches, tile_batch_size=3).logits
    torch.testing.assert_close(logits, torch.stack([xs, ys], -1).expand(2, -1, -1, -1))


def test_small_inputs_are_padded_and_cropped(model):
    frames = torch.randint(0, 256, (1, 2, 3, 7, 9)).float()
    with torch.no_grad():
        out = model(frames)
    assert out.flow.shape == (1, 7, 9, 2) and torch.isfinite(out.flow).all()


def test_tiled_equals_direct_at_training_size(model):
    frames = torch.randint(0, 256, (1, 2, 3, 12, 16)).float()
    calls = []
    with torch.no_grad():
        model(frames, progress=lambda done, total: calls.append((done, total)))
    assert calls == []  # the training size runs once, untiled
    wide = torch.cat([frames, frames.flip(-1)], dim=-1)  # 12×32: tiles start at columns 0, 8 and 16
    patches = frames_to_patches(wide)
    with torch.no_grad():
        tiled = model(patches, progress=lambda d, t: calls.append((d, t)))
        first_tile = model(patches[..., :16])
    assert calls[-1][0] == calls[-1][1] == 3
    assert tiled.flow.shape == (1, 12, 32, 2)
    # columns 0-7 are covered by the first tile alone, so they are exactly its output
    torch.testing.assert_close(tiled.flow[:, :, :8], first_tile.flow[:, :, :8], rtol=1e-5, atol=1e-5)


def test_output_points_gather_pixels(model):
    patches = torch.randn(2, 2, 27, 12, 16)
    points = torch.tensor([[0, 17], [191, 5]])
    with torch.no_grad():
        full = model(patches).logits.reshape(2, -1, 2)
        some = model(patches, output_points=points).logits
    torch.testing.assert_close(some, torch.stack([full[0, [0, 17]], full[1, [191, 5]]]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("inputs,match", [
    (torch.randn(1, 3, 3, 12, 16), r"frame pairs \(batch, 2, 3 or 27, height, width\)"),
    (torch.randn(1, 2, 5, 12, 16), "3 \\(RGB\\) or 27"),
    (torch.full((1, 2, 3, 12, 16), 300.0), "above pixel_range=255"),
])
def test_bad_flow_inputs(model, inputs, match):
    with pytest.raises(ValueError, match=match):
        model(inputs)


def test_unit_range_frames_warn(model):
    with pytest.warns(UserWarning, match="pixel_range=1.0"):
        model(torch.rand(1, 2, 3, 12, 16))
