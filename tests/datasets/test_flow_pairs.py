"""Flow pairs from real photos: exact warping, smooth random flows, real images, a deterministic dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perceiverkit.datasets.flow_pairs import (
    EVALUATION_IMAGES,
    TRAINING_IMAGES,
    SyntheticFlowPairs,
    real_images,
    smooth_flow,
    warp,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- warp ---------------------------------------------------------------------------------------------------


def test_integer_translation_reproduces_shifted_pixels():
    height, width, dx, dy = 20, 24, 3, -2
    frame2 = torch.rand(3, height, width, generator=_gen(0)) * 255
    flow = torch.empty(2, height, width)
    flow[0], flow[1] = dx, dy
    frame1, valid = warp(frame2, flow)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    inside = (xs + dx >= 0) & (xs + dx < width) & (ys + dy >= 0) & (ys + dy < height)
    assert torch.equal(valid, inside)
    # frame1(x, y) = frame2(x + 3, y - 2): frame 1 is frame 2 shifted by the flow.
    expected = frame2[:, 0 : height + dy, dx:width]
    torch.testing.assert_close(frame1[:, -dy:, : width - dx], expected, rtol=0, atol=1e-4)
    assert torch.equal(valid[-dy:, : width - dx], torch.ones(height + dy, width - dx, dtype=torch.bool))


def _smooth_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A smooth analytic 3-channel image, evaluated at arbitrary (sub-pixel) coordinates."""
    channels = [
        120 + 60 * torch.sin(0.05 * x + 0.03 * y + k) + 40 * torch.cos(0.04 * y - 0.02 * x + 2 * k) for k in range(3)
    ]
    return torch.stack(channels)


def test_warp_is_exact_backward_sampling_for_a_smooth_flow():
    height, width = 64, 80
    flow = smooth_flow(height, width, 6.0, _gen(1)).double()
    xs = torch.arange(width, dtype=torch.float64)
    ys = torch.arange(height, dtype=torch.float64)[:, None]
    frame2 = _smooth_image(xs.expand(height, width), ys.expand(height, width))
    truth = _smooth_image(xs + flow[0], ys + flow[1])  # frame1(x) = frame2(x + F(x)), analytically
    frame1, valid = warp(frame2, flow)
    assert frame1.dtype == torch.float64 and valid.float().mean() > 0.7
    error = (frame1 - truth).abs()[:, valid]
    assert error.max() < 0.05  # bilinear interpolation error of a smooth image only
    assert (frame2 - truth).abs()[:, valid].mean() > 2  # while the flow itself changes pixels 100× more


def test_warp_batched_integer_image_and_validity():
    image = torch.randint(0, 256, (2, 3, 10, 12), generator=_gen(2), dtype=torch.uint8)
    flow = torch.zeros(2, 2, 10, 12)
    flow[1, 0] = 0.5  # half-pixel shift right for the second item
    out, valid = warp(image, flow)
    assert out.shape == (2, 3, 10, 12) and out.dtype == torch.float32 and valid.shape == (2, 10, 12)
    torch.testing.assert_close(out[0], image[0].float())
    torch.testing.assert_close(out[1, :, :, :-1], (image[1, :, :, :-1].float() + image[1, :, :, 1:].float()) / 2)
    assert valid[0].all() and not valid[1, :, -1].any() and valid[1, :, :-1].all()


@pytest.mark.parametrize(
    "image, flow",
    [
        (torch.zeros(3, 8, 8), torch.zeros(2, 8, 9)),
        (torch.zeros(3, 8, 8), torch.zeros(8, 8, 2)),
        (torch.zeros(1, 3, 8, 8), torch.zeros(2, 8, 8)),
        (torch.zeros(3, 8, 8), torch.full((2, 8, 8), float("nan"))),
    ],
)
def test_warp_rejects_bad_inputs(image: torch.Tensor, flow: torch.Tensor):
    with pytest.raises(ValueError, match="flow"):
        warp(image, flow)


# --- smooth_flow --------------------------------------------------------------------------------------------


def test_smooth_flow_peak_shape_and_determinism():
    flow = smooth_flow(48, 64, 7.5, _gen(3))
    assert flow.shape == (2, 48, 64) and flow.dtype == torch.float32
    assert torch.linalg.vector_norm(flow, dim=0).max().item() == pytest.approx(7.5, rel=1e-5)
    assert torch.equal(flow, smooth_flow(48, 64, 7.5, _gen(3)))
    assert not torch.allclose(flow, smooth_flow(48, 64, 7.5, _gen(4)))
    assert flow.std(dim=(1, 2)).min() > 0.05  # not a bare translation


def test_smooth_flow_is_smooth():
    size, peak = 96, 8.0
    for seed in range(40):
        flow = smooth_flow(size, size, peak, _gen(seed))
        grad = max((flow[:, :, 1:] - flow[:, :, :-1]).abs().max(), (flow[:, 1:] - flow[:, :-1]).abs().max())
        assert grad < 8 * peak / size, f"seed {seed}: gradient {grad:.3f}"


def test_smooth_flow_without_modes_is_affine_and_zero_peak_is_zero():
    flow = smooth_flow(30, 40, 5.0, _gen(5), num_modes=0).double()
    assert (flow[:, :, 2:] - 2 * flow[:, :, 1:-1] + flow[:, :, :-2]).abs().max() < 1e-4
    assert (flow[:, 2:] - 2 * flow[:, 1:-1] + flow[:, :-2]).abs().max() < 1e-4
    assert torch.equal(smooth_flow(4, 5, 0.0, _gen(5)), torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match="max_displacement"):
        smooth_flow(4, 5, -1.0)


# --- real images ------------------------------------------------------------------------------------------


def test_real_images_are_uint8_rgb_and_exclude_the_evaluation_pair():
    from skimage.data import stereo_motorcycle

    train = real_images()
    everything = real_images(exclude_evaluation=False)
    assert len(train) >= 6 and len(everything) == len(train) + len(EVALUATION_IMAGES)
    assert len(train) <= len(TRAINING_IMAGES)
    for image in everything:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 256
        assert not image.flags.writeable
    left, right, _ = stereo_motorcycle()
    assert not any(im.shape == left.shape and np.array_equal(im, left) for im in train)
    assert any(im.shape == right.shape and np.array_equal(im, right) for im in everything)


# --- dataset ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pairs() -> SyntheticFlowPairs:
    return SyntheticFlowPairs(size=(48, 64), length=6, max_displacement=5.0, seed=0)


def test_dataset_items_have_documented_shapes(pairs: SyntheticFlowPairs):
    item = pairs[0]
    assert set(item) == {"frames", "flow", "valid"}
    assert item["frames"].shape == (2, 3, 48, 64) and item["frames"].dtype == torch.float32
    assert item["flow"].shape == (48, 64, 2) and item["flow"].dtype == torch.float32
    assert item["valid"].shape == (48, 64) and item["valid"].dtype == torch.bool
    assert 0 <= item["frames"].min() and item["frames"].max() <= 255 and item["frames"].std() > 5
    assert torch.linalg.vector_norm(item["flow"], dim=-1).max() <= 5.0 + 1e-4
    assert len(pairs) == 6
    with pytest.raises(IndexError):
        pairs[6]


def test_dataset_is_deterministic_per_seed_and_index(pairs: SyntheticFlowPairs):
    a, b = pairs[2], SyntheticFlowPairs(size=(48, 64), length=6, max_displacement=5.0, seed=0)[2]
    assert all(torch.equal(a[k], b[k]) for k in a)
    other_seed = SyntheticFlowPairs(size=(48, 64), length=6, max_displacement=5.0, seed=1)[2]
    assert not torch.equal(a["flow"], other_seed["flow"])
    assert not torch.equal(a["flow"], pairs[3]["flow"])


def test_dataset_flow_is_exact(pairs: SyntheticFlowPairs):
    """Warping frame 2 by the ground truth reproduces frame 1 wherever the match lies inside frame 2."""
    differences = []
    for index in range(len(pairs)):
        item = pairs[index]
        frame1, frame2 = item["frames"]
        flow = item["flow"].permute(2, 0, 1)
        rebuilt, valid = warp(frame2, flow)
        assert torch.equal(valid, item["valid"]) and valid.float().mean() > 0.5
        torch.testing.assert_close(rebuilt[:, valid], frame1[:, valid], rtol=0, atol=1e-3)
        differences.append((frame1 - frame2).abs()[:, valid].mean())
    assert torch.stack(differences).mean() > 1  # the frames really differ (small-flow items differ less)


def test_brightness_jitter_scales_frames_and_keeps_geometry():
    plain = SyntheticFlowPairs(size=(32, 40), length=2, max_displacement=4.0, seed=3)[1]
    jittered = SyntheticFlowPairs(size=(32, 40), length=2, max_displacement=4.0, seed=3, brightness=0.2)[1]
    assert torch.equal(plain["flow"], jittered["flow"]) and torch.equal(plain["valid"], jittered["valid"])
    for k in range(2):
        unclipped = (jittered["frames"][k] > 0) & (jittered["frames"][k] < 255) & (plain["frames"][k] > 1)
        ratio = jittered["frames"][k][unclipped] / plain["frames"][k][unclipped]
        assert 0.8 - 1e-4 <= ratio.mean() <= 1.2 + 1e-4 and ratio.std() < 1e-4  # one gain per frame
    assert not torch.equal(plain["frames"], jittered["frames"])


def test_dataset_accepts_custom_images_and_rejects_bad_ones():
    small = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)  # smaller than the crop
    item = SyntheticFlowPairs(size=(32, 32), length=1, max_displacement=2.0, images=[small])[0]
    assert item["frames"].shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"images\[0\] must be a uint8 \(H, W, 3\)"):
        SyntheticFlowPairs(images=[small[..., 0]])
    with pytest.raises(ValueError, match="brightness"):
        SyntheticFlowPairs(images=[small], brightness=1.5)


def test_an_independent_estimator_agrees_with_the_ground_truth():
    """Farnebäck, knowing nothing of how pairs are made, finds flow close to the labels (sign and axes included)."""
    from perceiverkit.evaluation.baselines import farneback_flow

    data = SyntheticFlowPairs(size=(128, 160), length=6, max_displacement=6.0, seed=0)
    estimate_epe, zero_epe = [], []
    for index in range(len(data)):
        item = data[index]
        frames = item["frames"].permute(0, 2, 3, 1).numpy()
        truth, valid = item["flow"].numpy(), item["valid"].numpy()
        estimate = farneback_flow(frames[0], frames[1])
        estimate_epe.append(np.linalg.norm(estimate - truth, axis=-1)[valid].mean())
        zero_epe.append(np.linalg.norm(truth, axis=-1)[valid].mean())
    assert np.mean(estimate_epe) < 0.4 * np.mean(zero_epe)
