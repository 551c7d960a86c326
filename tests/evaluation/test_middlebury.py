"""The Middlebury motorcycle evaluation: ground truth from real disparity, EPE of a model and of zero flow."""

from __future__ import annotations

import numpy as np
import torch

from perceiverkit import EncoderConfig, OpticalFlow, OpticalFlowConfig
from perceiverkit.cli import main
from perceiverkit.evaluation import evaluate_flow_on_motorcycle, load_motorcycle


def test_ground_truth_is_negative_disparity():
    from skimage.data import stereo_motorcycle

    left, right, disparity = stereo_motorcycle()
    pair = load_motorcycle()
    assert pair.flow.shape == (*disparity.shape, 2)
    valid = np.isfinite(disparity)
    np.testing.assert_array_equal(pair.valid, valid)
    np.testing.assert_allclose(pair.flow[valid, 0], -disparity[valid])
    assert np.all(pair.flow[valid, 1] == 0) and np.isnan(pair.flow[~valid]).all()
    # The ground truth really maps left to right: warping right by it reproduces left far better than no warp.
    ys, xs = np.nonzero(valid)
    keep = (xs - np.round(disparity[ys, xs]).astype(int)) >= 0
    ys, xs = ys[keep], xs[keep]
    warped = right[ys, xs - np.round(disparity[ys, xs]).astype(int)].astype(float)
    assert np.abs(warped - left[ys, xs]).mean() < 0.5 * np.abs(right[ys, xs].astype(float) - left[ys, xs]).mean()


def test_scaled_pair_scales_the_flow():
    full, half = load_motorcycle(), load_motorcycle(0.5)
    assert half.left.shape == (250, 370, 3)
    ratio = np.nanmedian(half.flow[..., 0]) / np.nanmedian(full.flow[..., 0])
    assert 0.45 < ratio < 0.55


def test_evaluation_reports_model_and_zero_flow(tmp_path):
    torch.manual_seed(0)
    model = OpticalFlow(OpticalFlowConfig(train_size=(24, 32), num_bands=4, patch_features=8, tile_overlap=4,
                                          encoder=EncoderConfig(num_latents=4, d_latents=16,
                                                                num_self_attends_per_block=1,
                                                                num_self_attention_heads=2,
                                                                num_cross_attention_heads=1))).eval()
    result = evaluate_flow_on_motorcycle(model, scale=0.1, figure=tmp_path / "fig.png")
    pair = load_motorcycle(0.1)
    zero = np.linalg.norm(pair.flow[pair.valid], axis=-1).mean()
    assert abs(result.zero_flow_epe - zero) < 1e-4
    assert (result.height, result.width) == pair.valid.shape and np.isfinite(result.epe)
    assert (tmp_path / "fig.png").is_file() and "EPE" in str(result)
    model.save_pretrained(tmp_path / "model")
    assert main(["eval-flow", "--model", str(tmp_path / "model"), "--scale", "0.1"]) == 0
