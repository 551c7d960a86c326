"""Classical optical-flow baselines to compare learned models against."""

from __future__ import annotations

import numpy as np

__all__ = ["farneback_flow"]


def _to_gray_uint8(frame: np.ndarray, name: str) -> np.ndarray:
    """(H, W), (H, W, 1) or RGB (H, W, 3) → (H, W) uint8; float frames are taken to be in [0, 255]."""
    import cv2

    array = np.asarray(frame)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"{name} must be grayscale (H, W) or RGB (H, W, 3), got shape {array.shape}")
    if array.dtype != np.uint8:
        if not (np.issubdtype(array.dtype, np.number) and not np.iscomplexobj(array)):
            raise ValueError(f"{name} must hold real numbers (uint8 preferred), got dtype {array.dtype}")
        array = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    if array.ndim == 3:
        array = cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(array)


def farneback_flow(
    frame1: np.ndarray,
    frame2: np.ndarray,
    *,
    pyr_scale: float = 0.5,
    levels: int = 5,
    winsize: int = 17,
    iterations: int = 5,
    poly_n: int = 7,
    poly_sigma: float = 1.5,
    flags: int = 0,
) -> np.ndarray:
    """Dense Farnebäck flow from ``frame1`` to ``frame2`` with OpenCV: (H, W, 2) float32, (dx, dy) pixels.

    The pixel at (x, y) in ``frame1`` is estimated to appear at (x + dx, y + dy) in ``frame2``. Frames are
    uint8 RGB (H, W, 3) or grayscale (H, W) arrays of equal size (float arrays are rounded and clipped to
    [0, 255]); colour frames are converted to grayscale. Keyword arguments are OpenCV's
    ``calcOpticalFlowFarneback`` parameters; the defaults (5-level pyramid, poly_n 7 with sigma 1.5) favour
    robustness on photographs over speed.
    """
    try:
        import cv2
    except ImportError:
        raise ImportError("farneback_flow needs OpenCV: pip install 'perceiverkit[baselines]'") from None
    prev, nxt = _to_gray_uint8(frame1, "frame1"), _to_gray_uint8(frame2, "frame2")
    if prev.shape != nxt.shape:
        raise ValueError(f"frames must have the same size, got {prev.shape} and {nxt.shape}")
    # OpenCV writes the flow into this buffer (it would also allocate one for None, which its stubs do not allow).
    out = np.zeros((*prev.shape, 2), np.float32)  # (H, W, 2)
    flow = cv2.calcOpticalFlowFarneback(
        prev, nxt, out, pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags
    )
    return np.asarray(flow, dtype=np.float32)
