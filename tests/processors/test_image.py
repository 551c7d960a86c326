"""Image preprocessing: patch layouts against Transformers' functions and closed-form layouts."""

from __future__ import annotations

import pytest
import torch
import transformers.models.perceiver.modeling_perceiver as hf

from perceiverkit import ConfigError, PositionEncodingConfig
from perceiverkit.layers.patches import neighbourhood_patches, space_to_depth
from perceiverkit.processors import ImagePreprocessor, ImagePreprocessorConfig

FOURIER = PositionEncodingConfig(kind="fourier", num_bands=4, max_resolution=(8, 8))


@pytest.mark.parametrize("shape,s,t", [((2, 3, 8, 12), 2, 1), ((2, 3, 8, 12), 4, 1), ((2, 4, 3, 8, 12), 2, 2),
                                       ((1, 2, 27, 6, 4), 1, 2), ((1, 3, 5, 8, 8), 4, 1)])
def test_space_to_depth_matches_transformers(shape, s, t):
    frames = torch.randn(shape)
    torch.testing.assert_close(space_to_depth(frames, s, t), hf.space_to_depth(frames, t, s), rtol=0, atol=0)


def test_space_to_depth_errors():
    with pytest.raises(ValueError, match="not divisible by the patch size 3"):
        space_to_depth(torch.randn(1, 3, 8, 8), 3)
    with pytest.raises(ValueError, match="3 frames are not divisible by the temporal block size 2"):
        space_to_depth(torch.randn(1, 3, 3, 8, 8), 1, 2)


def test_neighbourhood_patches_closed_form():
    image = torch.arange(2 * 4 * 5, dtype=torch.float32).reshape(1, 2, 4, 5)
    patches = neighbourhood_patches(image)
    assert patches.shape == (1, 18, 4, 5)
    y, x = 2, 3
    for dy in range(3):
        for dx in range(3):
            for c in range(2):
                channel = (dy * 3 + dx) * 2 + c
                assert patches[0, channel, y, x] == image[0, c, y + dy - 1, x + dx - 1]
    assert patches[0, 0, 0, 0] == 0  # the top-left neighbour of the corner pixel is zero padding


def test_pixels_downsample_space_not_batch_or_channels():
    pre = ImagePreprocessor(ImagePreprocessorConfig(prep_type="pixels", spatial_downsample=2, position=FOURIER))
    images = torch.randn(3, 3, 8, 8)
    out = pre(images)
    assert out.index_dims == (4, 4) and out.inputs.shape[0] == 3
    torch.testing.assert_close(out.inputs_without_pos, images[:, :, ::2, ::2].permute(0, 2, 3, 1).reshape(3, 16, 3))


def test_video_conv_and_pixels_keep_time():
    video = torch.randn(2, 4, 3, 16, 16)
    pos3d = PositionEncodingConfig(kind="fourier", num_bands=2, max_resolution=(4, 4, 4))
    out = ImagePreprocessor(ImagePreprocessorConfig(prep_type="conv", spatial_downsample=4, out_channels=5,
                                                    position=pos3d), video=True)(video)
    # 16 → 8 (7×7/2 conv, padding 3) → 3 (3×3/2 max-pool without padding), as Transformers computes it
    assert out.index_dims == (4, 3, 3) and out.inputs.shape == (2, 36, 5 + 3 + 12)
    out = ImagePreprocessor(ImagePreprocessorConfig(prep_type="patches", spatial_downsample=4, temporal_downsample=1,
                                                    position=pos3d), video=True)(video)
    assert out.index_dims == (4, 4, 4) and out.inputs.shape[-1] == 48 + 15


def test_add_positions_needs_matching_width():
    cfg = ImagePreprocessorConfig(prep_type="conv1x1", out_channels=6, spatial_downsample=1, position_mode="add",
                                  position=PositionEncodingConfig(kind="trainable", num_channels=6),
                                  position_grid=(4, 4))
    pre = ImagePreprocessor(cfg)
    out = pre(torch.randn(1, 3, 4, 4))
    assert pre.num_channels == 6
    torch.testing.assert_close(out.inputs - out.inputs_without_pos, pre.positions.encoding.embeddings[None])
    with pytest.raises(ValueError, match="adding 5-channel positions to 6-channel features"):
        ImagePreprocessor(ImagePreprocessorConfig(prep_type="conv1x1", out_channels=6, spatial_downsample=1,
                                                  position_mode="add", position_grid=(4, 4),
                                                  position=PositionEncodingConfig(kind="trainable", num_channels=5)))


@pytest.mark.parametrize("kwargs,match", [
    (dict(prep_type="conv", spatial_downsample=2), "powers of 4"),
    (dict(prep_type="conv1x1", temporal_downsample=2), "conv1x1 does not downsample in time"),
    (dict(prep_type="blur"), "prep_type must be one of"),
    (dict(position=PositionEncodingConfig(kind="trainable")), "position_grid is required"),
    (dict(position=PositionEncodingConfig(kind="fourier")), "max_resolution is required"),
    (dict(position_mode="multiply"), "position_mode must be one of"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ImagePreprocessorConfig(**kwargs).validate()


@pytest.mark.parametrize("images,error,match", [
    (torch.randn(3, 8, 8), ValueError, r"\(B, C, H, W\)"),
    (torch.randn(1, 4, 8, 8), ValueError, "must have 3 channels"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), TypeError, "floating-point"),
    (torch.randn(0, 3, 8, 8), ValueError, "must not be empty"),
])
def test_bad_images(images, error, match):
    pre = ImagePreprocessor(ImagePreprocessorConfig(prep_type="pixels", spatial_downsample=1, position=FOURIER))
    with pytest.raises(error, match=match):
        pre(images)


def test_conv3x3_stem_grid_and_receptive_field():
    """28×28 → 14×14 tokens; a pixel change only reaches grid points within the stem's receptive field."""
    config = ImagePreprocessorConfig(prep_type="conv3x3", in_channels=1, out_channels=16, stem_layers=2,
                                     spatial_downsample=2, position=PositionEncodingConfig(kind="fourier",
                                     num_bands=4, max_resolution=(14, 14)))
    prep = ImagePreprocessor(config).eval()
    images = torch.randn(2, 1, 28, 28)
    features = prep.features(images)
    assert features.shape == (2, 14, 14, 16)
    changed = images.clone()
    changed[:, :, 0, 0] += 5.0
    moved = (prep.features(changed) - features).abs().amax(dim=(0, 3)) > 0
    # conv (±1 px) → pool (×2) → conv (±1 grid point): only the top-left 2×2 grid points can see pixel (0, 0)
    assert moved[:2, :2].all() and not moved[2:].any() and not moved[:, 2:].any()


@pytest.mark.parametrize("downsample, layers", [(3, 2), (8, 2)])
def test_conv3x3_stem_rejects_impossible_downsampling(downsample, layers):
    with pytest.raises(ConfigError, match="conv3x3"):
        ImagePreprocessorConfig(prep_type="conv3x3", spatial_downsample=downsample, stem_layers=layers).validate()


TRAINABLE = PositionEncodingConfig(kind="trainable", num_channels=6, project_pos_dim=5)


@pytest.mark.parametrize("video,kwargs,mapped", [
    (False, dict(prep_type="conv1x1", out_channels=8, spatial_downsample=2), True),
    (False, dict(prep_type="conv1x1", out_channels=8, spatial_downsample=1, position=TRAINABLE,
                 position_grid=(8, 12)), True),
    (False, dict(prep_type="conv1x1", out_channels=2, spatial_downsample=1), False),  # narrowing: not worth mapping
    (True, dict(prep_type="conv1x1", out_channels=8, spatial_downsample=2,
                position=PositionEncodingConfig(kind="fourier", num_bands=4, max_resolution=(4, 8, 12))), True),
    (True, dict(prep_type="patches", spatial_downsample=2, temporal_downsample=2, linear_after_patching=True,
                out_channels=16, in_channels=2), False),  # 16 patch channels: not narrower than the 16 features
    (True, dict(prep_type="patches", spatial_downsample=1, temporal_downsample=2, linear_after_patching=True,
                out_channels=16, in_channels=2), True),
    (False, dict(prep_type="patches", spatial_downsample=2), False),
    (False, dict(prep_type="pixels", spatial_downsample=2), False),
    (False, dict(prep_type="conv", out_channels=8), False),
])
def test_factored_view_concatenates_to_the_inputs(video, kwargs, mapped):
    kwargs.setdefault("position", FOURIER)
    pre_cfg = ImagePreprocessorConfig(**kwargs)
    pre = ImagePreprocessor(pre_cfg, video=video)
    channels = pre_cfg.in_channels
    frames = 4 if kwargs["prep_type"] == "conv1x1" else 2  # frame pairs fold into one image, as for flow
    images = torch.randn((2, frames, channels, 8, 12) if video else (2, channels, 8, 12))
    out = pre(images)
    assert out.view is not None and out.encoder_inputs is out.view
    assert (out.view.weight is not None) == mapped
    assert out.view.positions.shape[0] == 1  # one copy of the positions for the whole batch
    assert out._inputs is None  # not concatenated until something reads them
    features = out.inputs_without_pos.flatten(1, -2)
    if kwargs["prep_type"] == "conv1x1":  # applied as a linear map: the convolution module itself is the oracle
        frames_first = images.flatten(0, 1) if video else images
        conv = pre.conv(frames_first).movedim(1, -1).reshape(2, -1, features.shape[-1])
        torch.testing.assert_close(features, conv, rtol=1e-6, atol=1e-6)
    positions = pre.positions.positions(2, out.index_dims, False, features)
    torch.testing.assert_close(out.inputs, torch.cat([features, positions], dim=-1), rtol=1e-6, atol=1e-6)


def test_added_positions_have_no_factored_view():
    pre = ImagePreprocessor(ImagePreprocessorConfig(prep_type="pixels", spatial_downsample=1, position_mode="add",
                                                    position=PositionEncodingConfig(
                                                        kind="trainable", num_channels=3), position_grid=(8, 12)))
    out = pre(torch.randn(2, 3, 8, 12))
    assert out.view is None and out.encoder_inputs is out.inputs
