"""Flow colour coding checked against the `flow_vis` package (an independent implementation of the Middlebury
colour wheel) as the oracle, plus closed-form EPE values and figure layout."""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType

import flow_vis
import numpy as np
import PIL.Image
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from perceiverkit.viz import (
    FIGURE_MARGIN,
    average_endpoint_error,
    endpoint_error,
    flow_figure,
    flow_to_color,
    save_flow_figure,
    save_flow_png,
)
from perceiverkit.viz.flow import _COLOR_WHEEL
from perceiverkit.viz.flow_figure import _figure_panels


@pytest.fixture
def oracle() -> ModuleType:
    return flow_vis


@pytest.fixture
def pil() -> ModuleType:
    return PIL.Image


def max_channel_difference(ours: np.ndarray, reference: np.ndarray) -> int:
    assert ours.shape == reference.shape and ours.dtype == reference.dtype == np.uint8
    return int(np.abs(ours.astype(np.int16) - reference.astype(np.int16)).max())


def smooth_flow(height: int, width: int, seed: int, scale: float = 6.0) -> np.ndarray:
    """A smooth random field: a few low-frequency sinusoids per component, like real motion."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    flow = np.zeros((height, width, 2))
    for channel in range(2):
        for _ in range(3):
            fy, fx, phase = rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0), rng.uniform(0, 2 * math.pi)
            flow[..., channel] += rng.normal() * np.sin(2 * math.pi * (fy * y + fx * x) + phase)
    return scale * flow / np.abs(flow).max()


def direction_sweep(radii: tuple[float, ...], steps: int = 3600) -> np.ndarray:
    """One row per radius, one column per direction, covering the full circle."""
    theta = np.linspace(0.0, 2.0 * math.pi, steps, endpoint=False)
    r = np.asarray(radii)[:, None]
    return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=-1)


# --- colour coding against the oracle ------------------------------------------------------------------------


def test_color_wheel_matches_oracle(oracle):
    assert _COLOR_WHEEL.shape == (55, 3)
    np.testing.assert_array_equal(_COLOR_WHEEL, oracle.make_colorwheel())


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_random_smooth_flow_matches_oracle(oracle, seed, dtype):
    # Both normalise by the largest magnitude in the image (flow_vis adds 1e-5 to it: within rounding).
    flow = smooth_flow(37, 53, seed, scale=[0.3, 2.0, 7.0, 40.0][seed]).astype(dtype)
    assert max_channel_difference(flow_to_color(flow), oracle.flow_to_color(flow)) <= 1


@pytest.mark.parametrize("convert_to_bgr", [False, True])
def test_bgr_matches_oracle(oracle, convert_to_bgr):
    flow = smooth_flow(16, 24, seed=7)
    ours = flow_to_color(flow, convert_to_bgr=convert_to_bgr)
    assert max_channel_difference(ours, oracle.flow_to_color(flow, convert_to_bgr=convert_to_bgr)) <= 1
    if convert_to_bgr:
        np.testing.assert_array_equal(ours, flow_to_color(flow)[..., ::-1])


@pytest.mark.parametrize("max_magnitude", [1.0, 4.0, 25.0])
def test_known_max_matches_oracle(oracle, max_magnitude):
    # flow_vis normalises by the largest radius present, so give it one extra pixel of exactly that radius;
    # our call gets the same maximum explicitly and must colour every pixel the same way.
    flow = smooth_flow(20, 30, seed=3, scale=0.6 * max_magnitude)
    assert np.hypot(flow[..., 0], flow[..., 1]).max() < max_magnitude
    flow[0, 0] = (0.6 * max_magnitude, -0.8 * max_magnitude)
    ours = flow_to_color(flow, max_magnitude=max_magnitude)
    assert max_channel_difference(ours, oracle.flow_to_color(flow)) <= 1
    # Without the explicit maximum the image is normalised by its own largest radius: same thing here.
    assert max_channel_difference(flow_to_color(flow), ours) <= 1


@pytest.mark.parametrize("max_magnitude", [0.5, 3.0])
def test_beyond_max_is_darkened_like_oracle(oracle, max_magnitude):
    # Flow up to 3x the maximum: the oracle's colour step applied to pre-normalised (u, v) gives the reference,
    # including the 75 % darkening of out-of-range pixels.
    flow = smooth_flow(24, 32, seed=11, scale=3.0 * max_magnitude)
    radius = np.hypot(flow[..., 0], flow[..., 1]) / max_magnitude
    assert (radius > 1.05).any() and (radius < 0.95).any()
    reference = oracle.flow_uv_to_colors(flow[..., 0] / max_magnitude, flow[..., 1] / max_magnitude)
    ours = flow_to_color(flow, max_magnitude=max_magnitude)
    # Exclude pixels whose radius is within float noise of 1, where the two sides may take different branches.
    keep = np.abs(radius - 1.0) > 1e-9
    assert max_channel_difference(ours[keep], reference[keep]) <= 1
    assert ours[radius > 1.05].max() <= math.floor(0.75 * 255)


def test_full_direction_sweep_matches_oracle(oracle):
    flow = direction_sweep((0.1, 0.5, 0.9, 1.0))
    ours = flow_to_color(flow, max_magnitude=1.0)
    assert max_channel_difference(ours, oracle.flow_to_color(flow)) <= 1
    # A full turn at full saturation visits every wheel colour.
    wheel = _COLOR_WHEEL.astype(np.int16)
    rim = ours[-1].astype(np.int16)
    assert all(np.abs(rim - colour).max(axis=-1).min() <= 1 for colour in wheel)


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6), st.just(2)),
               elements=st.floats(-100, 100, allow_subnormal=False))
)
def test_arbitrary_flow_matches_oracle(flow):
    flow = flow + 0.0  # the oracle does not canonicalise negative zeros; compare on the same footing
    radius = np.hypot(flow[..., 0], flow[..., 1])
    # flow_vis divides by (max radius + 1e-5): at 1e-3 that is 1 % of full scale (2.5 colour levels), so compare
    # only where it stays below half a level.
    if radius.max() < 1e-2:
        return
    assert max_channel_difference(flow_to_color(flow), flow_vis.flow_to_color(flow)) <= 1


# --- colour coding: closed forms ----------------------------------------------------------------------------


def test_zero_flow_is_white():
    np.testing.assert_array_equal(flow_to_color(np.zeros((5, 7, 2))), np.full((5, 7, 3), 255, np.uint8))
    np.testing.assert_array_equal(flow_to_color(np.zeros((2, 2, 2)), max_magnitude=3.0), 255)


@pytest.mark.parametrize("v", [0.0, -0.0])
def test_pure_x_flow_at_max_is_red(v):
    flow = np.zeros((3, 4, 2))
    flow[1, 2] = (2.5, v)
    image = flow_to_color(flow)
    assert np.abs(image[1, 2].astype(int) - (255, 0, 0)).max() <= 1
    assert np.abs(flow_to_color(flow, max_magnitude=2.5)[1, 2].astype(int) - (255, 0, 0)).max() <= 1
    np.testing.assert_array_equal(image[0, 0], (255, 255, 255))


def test_half_magnitude_is_half_saturated():
    # Pure +x at half the maximum: halfway between white and red.
    image = flow_to_color(np.array([[[1.0, 0.0]]]), max_magnitude=2.0)
    np.testing.assert_array_equal(image[0, 0], (255, 127, 127))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_is_black_and_ignored_for_the_maximum(bad):
    flow = smooth_flow(8, 9, seed=2)
    holes = flow.copy()
    holes[2, 3, 0] = bad
    holes[5, 1, 1] = bad
    image = flow_to_color(holes)
    np.testing.assert_array_equal(image[2, 3], (0, 0, 0))
    np.testing.assert_array_equal(image[5, 1], (0, 0, 0))
    clean = flow.copy()
    clean[2, 3] = clean[5, 1] = 0.0  # removing those pixels does not change the normalisation
    assert np.hypot(flow[2, 3, 0], flow[2, 3, 1]) < np.hypot(flow[..., 0], flow[..., 1]).max()
    keep = np.ones((8, 9), bool)
    keep[2, 3] = keep[5, 1] = False
    assert max_channel_difference(image[keep], flow_to_color(clean)[keep]) <= 1


def test_all_nan_is_black():
    np.testing.assert_array_equal(flow_to_color(np.full((3, 3, 2), np.nan)), 0)


def test_torch_and_integer_inputs():
    flow = smooth_flow(6, 10, seed=5)
    expected = flow_to_color(flow)
    np.testing.assert_array_equal(flow_to_color(torch.from_numpy(flow)), expected)
    assert max_channel_difference(flow_to_color(torch.from_numpy(flow).to(torch.bfloat16)), expected) <= 40
    integer = np.array([[[3, 0], [0, -4]]], dtype=np.int32)
    np.testing.assert_array_equal(flow_to_color(integer), flow_to_color(integer.astype(np.float64)))


@pytest.mark.parametrize(
    "shape,match",
    [((4, 5), r"\(H, W, 2\)"), ((4, 5, 3), r"\(H, W, 2\)"), ((2, 4, 5), "channels-first"),
     ((1, 4, 5, 2), "batch"), ((0, 5, 2), "H, W > 0"), ((4, 0, 2), "H, W > 0")],
)
def test_bad_flow_shapes(shape, match):
    with pytest.raises(ValueError, match=match):
        flow_to_color(np.zeros(shape))


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 2), bool), np.zeros((2, 2, 2), complex),
                                 np.array([[["a", "b"]]]), "not a flow"])
def test_bad_flow_types(bad):
    with pytest.raises(TypeError, match=r"\(H, W, 2\)"):
        flow_to_color(bad)


@pytest.mark.parametrize("max_magnitude", [0.0, -1.0, math.nan, math.inf])
def test_bad_max_magnitude(max_magnitude):
    with pytest.raises(ValueError, match="max_magnitude"):
        flow_to_color(np.ones((2, 2, 2)), max_magnitude=max_magnitude)


def test_save_flow_png(pil, tmp_path):
    flow = smooth_flow(9, 13, seed=4)
    path = save_flow_png(torch.from_numpy(flow), tmp_path / "new" / "dir" / "flow.png", max_magnitude=5.0)
    assert path == tmp_path / "new" / "dir" / "flow.png"
    with pil.open(path) as image:
        assert image.format == "PNG"
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), flow_to_color(flow, max_magnitude=5.0))


# --- end-point error ----------------------------------------------------------------------------------------


def test_endpoint_error_three_four_five():
    flow = np.zeros((2, 3, 2))
    truth = np.zeros((2, 3, 2))
    truth[0, 1] = (3.0, 4.0)
    flow[1, 2] = (1.0, 1.0)
    truth[1, 2] = (-2.0, -3.0)  # difference (3, 4) again, from another origin
    expected = np.zeros((2, 3))
    expected[0, 1] = expected[1, 2] = 5.0
    np.testing.assert_allclose(endpoint_error(flow, truth), expected)
    assert average_endpoint_error(flow, truth) == pytest.approx(10.0 / 6.0)
    assert average_endpoint_error(torch.from_numpy(flow).float(), torch.from_numpy(truth)) == pytest.approx(10 / 6)


def test_endpoint_error_valid_mask():
    flow = np.zeros((2, 2, 2))
    truth = np.array([[[3.0, 4.0], [6.0, 8.0]], [[0.0, 1.0], [0.0, 0.0]]])
    valid = np.array([[True, False], [True, False]])
    error = endpoint_error(flow, truth, valid)
    np.testing.assert_allclose(error[valid], [5.0, 1.0])
    assert np.isnan(error[~valid]).all()
    assert average_endpoint_error(flow, truth, valid) == pytest.approx(3.0)
    # KITTI-style masks stored as 0/1 numbers (or tensors) mean the same.
    assert average_endpoint_error(flow, truth, valid.astype(np.float32)) == pytest.approx(3.0)
    assert average_endpoint_error(flow, truth, torch.from_numpy(valid)) == pytest.approx(3.0)


def test_default_valid_is_finite_ground_truth():
    flow = np.zeros((1, 3, 2))
    truth = np.array([[[3.0, 4.0], [np.nan, 0.0], [np.inf, 1.0]]])
    error = endpoint_error(flow, truth)
    assert error[0, 0] == pytest.approx(5.0) and np.isnan(error[0, 1:]).all()
    assert average_endpoint_error(flow, truth) == pytest.approx(5.0)
    # An explicit mask cannot revive a pixel without ground truth.
    assert average_endpoint_error(flow, truth, np.ones((1, 3), bool)) == pytest.approx(5.0)


def test_non_finite_prediction_is_not_hidden():
    flow = np.zeros((1, 2, 2))
    flow[0, 1, 0] = np.nan
    assert math.isnan(average_endpoint_error(flow, np.ones((1, 2, 2))))


@pytest.mark.parametrize(
    "truth,valid",
    [(np.ones((2, 2, 2)), np.zeros((2, 2), bool)), (np.full((2, 2, 2), np.nan), None),
     (np.array([[[1.0, 1.0], [np.nan, 0.0]], [[np.nan, 0.0], [np.nan, 0.0]]]), np.array([[0, 1], [1, 1]]))],
)
def test_no_valid_pixels_is_an_error(truth, valid):
    with pytest.raises(ValueError, match="no valid pixels"):
        average_endpoint_error(np.zeros((2, 2, 2)), truth, valid)


def test_endpoint_error_bad_inputs():
    with pytest.raises(ValueError, match="same"):
        endpoint_error(np.zeros((2, 3, 2)), np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match=r"ground_truth must have shape \(H, W, 2\)"):
        endpoint_error(np.zeros((2, 3, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"valid must have shape \(2, 3\)"):
        endpoint_error(np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="boolean"):
        endpoint_error(np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), np.full((2, 3), 0.5))


# --- figures ------------------------------------------------------------------------------------------------

H, W = 12, 20


def frames_pair() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(2)]


def panel(figure: np.ndarray, index: int, title_height: int) -> np.ndarray:
    left = FIGURE_MARGIN + index * (W + FIGURE_MARGIN)
    top = FIGURE_MARGIN + title_height
    return figure[top:top + H, left:left + W]


@pytest.mark.parametrize("titles", [True, False])
def test_figure_without_ground_truth(pil, titles):
    frames = frames_pair()
    flow = smooth_flow(H, W, seed=1)
    figure = flow_figure(frames, flow, titles=titles)
    assert figure.mode == "RGB"
    assert figure.width == 3 * W + 4 * FIGURE_MARGIN
    title_height = figure.height - H - 2 * FIGURE_MARGIN
    assert title_height > 0 if titles else title_height == 0
    pixels = np.asarray(figure)
    np.testing.assert_array_equal(panel(pixels, 0, title_height), frames[0])
    np.testing.assert_array_equal(panel(pixels, 1, title_height), frames[1])
    np.testing.assert_array_equal(panel(pixels, 2, title_height), flow_to_color(flow))
    band = pixels[:FIGURE_MARGIN + title_height]
    assert (band < 128).any() if titles else (band == 255).all()


def test_figure_with_ground_truth(pil):
    frames = frames_pair()
    truth = smooth_flow(H, W, seed=2)
    flow = truth + 0.3
    valid = np.ones((H, W), bool)
    valid[:3, :4] = False
    figure = flow_figure(frames, flow, ground_truth=truth, valid=valid)
    assert figure.width == 5 * W + 6 * FIGURE_MARGIN
    title_height = figure.height - H - 2 * FIGURE_MARGIN
    pixels = np.asarray(figure)
    scale = np.hypot(truth[valid][:, 0], truth[valid][:, 1]).max()  # the ground truth sets the shared scale
    np.testing.assert_array_equal(panel(pixels, 2, title_height), flow_to_color(flow, scale))
    truth_panel = panel(pixels, 3, title_height)
    np.testing.assert_array_equal(truth_panel[valid], flow_to_color(truth, scale)[valid])
    assert (truth_panel[~valid] == 0).all()
    error_panel = panel(pixels, 4, title_height)
    assert (error_panel[~valid] == 128).all()
    assert error_panel[valid].max() > 0

    titles = [title for title, _ in _figure_panels(frames, flow, truth, valid, None)]
    expected_aepe = average_endpoint_error(flow, truth, valid)
    assert len(titles) == 5 and titles[:4] == ["frame 1", "frame 2", "flow", "ground truth"]
    assert f"{expected_aepe:.3f}" in titles[4] and "AEPE" in titles[4]


def test_error_heatmap_ramp(pil):
    truth = np.zeros((1, 3, 2))
    flow = np.array([[[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]])
    frames = [np.zeros((1, 3, 3))] * 2
    heat = dict(_figure_panels(frames, flow, truth, None, None))
    error_image = next(image for title, image in heat.items() if title.startswith("error"))
    np.testing.assert_array_equal(error_image[0, 0], (0, 0, 0))  # no error: black
    np.testing.assert_array_equal(error_image[0, 2], (255, 255, 255))  # largest error: white
    np.testing.assert_array_equal(error_image[0, 1], (255, 128, 0))  # halfway: between red and yellow


def test_figure_frame_normalisation(pil):
    frames = frames_pair()
    flow = smooth_flow(H, W, seed=3)
    expected = np.asarray(flow_figure(frames, flow))
    unit = [frame / 255.0 for frame in frames]
    tensors = [torch.from_numpy(frame).permute(2, 0, 1).float() / 255.0 for frame in frames]
    symmetric = [frame / 127.5 - 1.0 for frame in frames]
    for variant in (unit, tensors, symmetric, torch.stack(tensors)):
        np.testing.assert_array_equal(np.asarray(flow_figure(variant, flow)), expected)
    gray = np.asarray(flow_figure([frames[0][..., 0], frames[1][..., :1]], flow, titles=False))
    np.testing.assert_array_equal(panel(gray, 0, 0)[..., 2], frames[0][..., 0])


def test_save_flow_figure(pil, tmp_path):
    frames = frames_pair()
    truth = smooth_flow(H, W, seed=4)
    path = save_flow_figure(frames, torch.from_numpy(truth * 0.9), tmp_path / "out" / "figure.png",
                            ground_truth=truth)
    with pil.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (5 * W + 6 * FIGURE_MARGIN, flow_figure(frames, truth, truth).height)


def test_figure_bad_inputs(pil):
    frames = frames_pair()
    flow = np.zeros((H, W, 2))
    with pytest.raises(ValueError, match="pair"):
        flow_figure(frames[:1], flow)
    with pytest.raises(ValueError, match=rf"frames\[1\] is {H - 1}x{W}"):
        flow_figure([frames[0], frames[1][1:]], flow)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        flow_figure([frames[0], np.zeros((H, W, 5))], flow)
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        flow_figure(frames, np.zeros((H, W)))
    with pytest.raises(ValueError, match="ground_truth"):
        flow_figure(frames, flow, valid=np.ones((H, W), bool))
    with pytest.raises(ValueError, match="same"):
        flow_figure(frames, flow, ground_truth=np.zeros((H, W + 1, 2)))


def test_long_titles_are_shortened_to_fit(pil):
    # A 4-pixel-wide panel cannot hold "ground truth": the title is cut instead of spilling into neighbours.
    flow = np.ones((3, 4, 2))
    figure = np.asarray(flow_figure([np.zeros((3, 4, 3))] * 2, flow, ground_truth=flow))
    gaps = [FIGURE_MARGIN + i * (4 + FIGURE_MARGIN) - FIGURE_MARGIN for i in range(6)]
    for left in gaps:
        assert (figure[:, left:left + FIGURE_MARGIN] == 255).all()


def test_paths_accept_strings(pil, tmp_path: Path):
    target = save_flow_png(np.ones((2, 2, 2)), str(tmp_path / "a.png"))
    assert isinstance(target, Path) and target.is_file()
