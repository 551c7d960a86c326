"""The flow model's cost volume: closed-form correlation of known shifts, and the model option built on it."""

from __future__ import annotations

import pytest
import torch

from perceiverkit import EncoderConfig, OpticalFlow, OpticalFlowConfig
from perceiverkit.config import ConfigError
from perceiverkit.processors.cost_volume import CostVolumePreprocessor, displacements, local_correlation
from perceiverkit.processors.flow import frames_to_patches


def _shifted_pair(dy: int, dx: int, size: tuple[int, int] = (24, 32)) -> torch.Tensor:
    """A random texture and the same texture moved by (dy, dx): frame1(x) = frame2(x + d)."""
    torch.manual_seed(0)
    h, w = size
    big = torch.rand(3, h + 20, w + 20) * 255
    first = big[:, 10:10 + h, 10:10 + w]
    second = big[:, 10 - dy:10 - dy + h, 10 - dx:10 - dx + w]
    return torch.stack([first, second])[None]


def test_displacement_grid_is_row_major_multiples_of_the_stride():
    assert displacements(1, 2) == [(-2, -2), (-2, 0), (-2, 2), (0, -2), (0, 0), (0, 2), (2, -2), (2, 0), (2, 2)]
    assert len(displacements(4, 2)) == 81 and displacements(0, 3) == [(0, 0)]


@pytest.mark.parametrize("dy, dx", [(0, 0), (0, 4), (-2, 6), (4, -8)])
def test_the_true_displacement_correlates_perfectly_away_from_the_border(dy, dx):
    patches = frames_to_patches(_shifted_pair(dy, dx))
    costs = local_correlation(patches, radius=4, stride=2)
    assert costs.shape == (1, 81, 24, 32)
    interior = costs[0, :, 9:-9, 9:-9]  # pixels whose every displaced patch lies inside the frame
    best = displacements(4, 2).index((dy, dx))
    torch.testing.assert_close(interior[best], torch.ones_like(interior[best]), atol=1e-4, rtol=0)
    assert bool((interior.argmax(dim=0) == best).all())
    assert float(costs.abs().max()) <= 1 + 1e-5


def test_displacements_leaving_the_frame_score_zero():
    patches = frames_to_patches(_shifted_pair(0, 0))
    costs = local_correlation(patches, radius=1, stride=3)
    right = displacements(1, 3).index((0, 3))
    assert torch.all(costs[0, right, :, -3:] == 0) and torch.all(costs[0, right, :, :-4] != 0)


def test_bad_shapes_and_settings_are_rejected():
    with pytest.raises(ValueError, match=r"\(batch, 2, channels, height, width\)"):
        local_correlation(torch.zeros(1, 3, 27, 4, 4), radius=1)
    with pytest.raises(ValueError, match="radius >= 0 and stride >= 1"):
        local_correlation(torch.zeros(1, 2, 27, 4, 4), radius=1, stride=0)
    with pytest.raises(ValueError, match="radius >= 1"):
        CostVolumePreprocessor(torch.nn.Identity(), radius=0)


def _config(**kwargs) -> OpticalFlowConfig:
    return OpticalFlowConfig(train_size=(12, 16), num_bands=4, patch_features=8, tile_overlap=4,
                             encoder=EncoderConfig(num_latents=4, d_latents=16, num_self_attends_per_block=1,
                                                   num_self_attention_heads=2, num_cross_attention_heads=1),
                             **kwargs)


def test_flow_model_with_a_cost_volume_reads_the_costs_of_each_pixel():
    plain, with_costs = OpticalFlow(_config()), OpticalFlow(_config(cost_volume_radius=2, cost_volume_stride=1))
    assert with_costs.perceiver.preprocessor.num_channels == plain.perceiver.preprocessor.num_channels + 25
    frames = _shifted_pair(0, 1, size=(12, 16))
    pre = with_costs.perceiver.preprocessor(frames_to_patches(frames))
    costs = local_correlation(frames_to_patches(frames), 2, 1)
    # the appended channels are the costs, one row per pixel in row-major order
    torch.testing.assert_close(pre.inputs[0, :, -25:], costs[0].flatten(1).T)
    out = with_costs(frames, output_points=torch.tensor([[0, 5, 191]]))
    assert out.flow.shape == (1, 3, 2) and torch.isfinite(out.flow).all()
    assert with_costs(frames).flow.shape == (1, 12, 16, 2)


def test_query_residual_switch_reaches_the_decoder():
    assert OpticalFlow(_config(decoder_query_residual=True)).perceiver.decoder.config.use_query_residual
    assert not OpticalFlow(_config()).perceiver.decoder.config.use_query_residual


def test_negative_cost_volume_settings_are_config_errors():
    with pytest.raises(ConfigError, match="cost_volume_radius >= 0"):
        _config(cost_volume_radius=-1).validate()
