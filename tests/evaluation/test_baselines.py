"""Farnebäck baseline: recovers known translations of real photos, in pixels, frame 1 → frame 2."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
from skimage import data

from perceiverkit.evaluation.baselines import farneback_flow

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
