"""Farnebäck and DIS baselines: recover known translations of real photos, in pixels, frame 1 → frame 2; their
settings are OpenCV's parameters."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
from skimage import data

from perceiverkit.evaluation.baselines import (
    DEFAULT_FARNEBACK,
    DISSetting,
    FarnebackSetting,
    UntunedResolutionError,
    dis_flow,
    farneback_flow,
    tuned_setting,
)

SHIFT = np.array([3.0, -2.0])  # (dx, dy): content moves 3 px right and 2 px up


def _shifted_pair(image: np.ndarray, margin: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Two crops such that frame2(x, y) = frame1(x - 3, y + 2), i.e. true flow (3, -2) everywhere."""
    height, width = image.shape[:2]
    dx, dy = SHIFT.astype(int)
    frame1 = image[margin : height - margin, margin : width - margin]
    frame2 = image[margin - dy : height - margin - dy, margin - dx : width - margin - dx]
    return frame1, frame2


def _interior(array: np.ndarray, border: int = 32) -> np.ndarray:
    return array[border:-border, border:-border]


def test_recovers_a_translation_of_a_textured_photo():
    frame1, frame2 = _shifted_pair(data.immunohistochemistry())
    flow = farneback_flow(frame1, frame2)
    assert flow.shape == (*frame1.shape[:2], 2) and flow.dtype == np.float32
    epe = np.linalg.norm(flow - SHIFT, axis=-1)
    assert _interior(epe).mean() < 0.5
    np.testing.assert_allclose(np.median(_interior(flow), axis=(0, 1)), SHIFT, atol=0.1)


def test_recovers_a_translation_of_the_astronaut_where_it_is_textured():
    """Flat regions (black sky, white suit) are ambiguous for any local method; judge the textured pixels."""
    frame1, frame2 = _shifted_pair(data.astronaut())
    epe = np.linalg.norm(farneback_flow(frame1, frame2) - SHIFT, axis=-1)
    gray = cv2.cvtColor(frame1, cv2.COLOR_RGB2GRAY).astype(np.float64)
    gx, gy = cv2.Sobel(gray, cv2.CV_64F, 1, 0) / 8, cv2.Sobel(gray, cv2.CV_64F, 0, 1) / 8
    jxx, jyy, jxy = (cv2.GaussianBlur(a, (0, 0), 4) for a in (gx * gx, gy * gy, gx * gy))
    min_eigen = (jxx + jyy) / 2 - np.sqrt(((jxx - jyy) / 2) ** 2 + jxy**2)  # structure tensor: 2-D texture
    textured = _interior(min_eigen > 4)
    assert textured.mean() > 0.25
    assert _interior(epe)[textured].mean() < 0.5


def test_grayscale_and_float_inputs_match_uint8_rgb():
    frame1, frame2 = _shifted_pair(data.chelsea()[:160, :200])
    reference = farneback_flow(frame1, frame2)
    gray1, gray2 = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (frame1, frame2))
    np.testing.assert_array_equal(farneback_flow(gray1, gray2), reference)
    np.testing.assert_array_equal(farneback_flow(gray1[..., None], gray2[..., None]), reference)
    np.testing.assert_array_equal(farneback_flow(frame1.astype(np.float32), frame2.astype(np.float64)), reference)
    assert np.abs(farneback_flow(frame1, frame1)).mean() < 0.01  # no motion: (near) zero flow


def test_rejects_bad_frames():
    frame = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="same size"):
        farneback_flow(frame, frame[:16])
    with pytest.raises(ValueError, match=r"frame2 must be grayscale \(H, W\) or RGB \(H, W, 3\)"):
        farneback_flow(frame, np.zeros((3, 32, 32, 1), np.uint8))


def test_missing_opencv_is_a_clear_import_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` raise ImportError
    frame = np.zeros((8, 8), np.uint8)
    with pytest.raises(ImportError, match=r"perceiverkit\[baselines\]"):
        farneback_flow(frame, frame)


# --- DIS, the settings dataclasses and the tuned table -----------------------------------------------------------

def test_dis_recovers_a_translation_of_a_textured_photo():
    frame1, frame2 = _shifted_pair(data.immunohistochemistry())
    flow = dis_flow(frame1, frame2, finest_scale=0)
    assert flow.shape == (*frame1.shape[:2], 2) and flow.dtype == np.float32
    assert _interior(np.linalg.norm(flow - SHIFT, axis=-1)).mean() < 0.3
    np.testing.assert_allclose(np.median(_interior(flow), axis=(0, 1)), SHIFT, atol=0.1)


def test_dis_settings_replace_the_presets_values():
    """Each replaced parameter changes the result; the preset alone equals OpenCV's preset object."""
    frame1, frame2 = _shifted_pair(data.chelsea()[:160, :200])
    gray1, gray2 = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (frame1, frame2))
    reference = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST).calc(gray1, gray2, None)
    np.testing.assert_array_equal(DISSetting("fast").flow(frame1, frame2), reference)
    changed = DISSetting("fast", finest_scale=0, patch_size=6, patch_stride=2,
                         variational_refinement_iterations=0).flow(frame1, frame2)
    assert np.abs(changed - reference).max() > 0.01
    with pytest.raises(ValueError, match="preset must be one of"):
        dis_flow(frame1, frame2, preset="slow")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"patch_stride must lie in \[1, patch_size=4\]"):
        dis_flow(frame1, frame2, patch_size=4, patch_stride=8)


def test_farneback_setting_is_the_functions_parameters():
    frame1, frame2 = _shifted_pair(data.chelsea()[:160, :200])
    setting = FarnebackSetting(pyr_scale=0.8, levels=3, winsize=9, iterations=3, poly_n=5, poly_sigma=1.1,
                               gaussian=True)
    gray1, gray2 = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (frame1, frame2))
    direct = cv2.calcOpticalFlowFarneback(gray1, gray2, None, 0.8, 3, 9, 3, 5, 1.1, cv2.OPTFLOW_FARNEBACK_GAUSSIAN)
    np.testing.assert_array_equal(setting.flow(frame1, frame2), direct)
    assert "Gaussian winsize 9" in setting.describe() and "pyr_scale 0.8" in setting.describe()
    np.testing.assert_array_equal(DEFAULT_FARNEBACK.flow(frame1, frame2), farneback_flow(frame1, frame2))


def test_tuned_settings_exist_for_both_middlebury_sizes_and_no_other():
    for height, width in ((62, 93), (125, 185)):
        assert isinstance(tuned_setting("farneback", height, width), FarnebackSetting)
        assert isinstance(tuned_setting("dis", height, width), DISSetting)
    with pytest.raises(UntunedResolutionError, match=r"no tuned dis setting for 100×50; tuned sizes: 93×62"):
        tuned_setting("dis", 50, 100)


def test_missing_opencv_names_the_extra_for_dis_too(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    frame = np.zeros((8, 8), np.uint8)
    with pytest.raises(ImportError, match=r"perceiverkit\[baselines\]"):
        DISSetting().flow(frame, frame)
