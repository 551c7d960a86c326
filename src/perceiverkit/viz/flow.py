"""Optical-flow colour coding and end-point error (figures are in :mod:`.flow_figure`).

Colours follow the Middlebury colour wheel of Baker et al., "A Database and Evaluation Methodology for
Optical Flow" (ICCV 2007) — the coding used by Sintel, KITTI, RAFT and the Perceiver IO paper — so images
made here can be put next to published ones: the direction of motion sets the hue, its magnitude (relative
to a normalising maximum) the saturation, zero motion is white.

Flow arrays are ``(H, W, 2)`` with ``u`` (x-displacement, positive to the right) in channel 0 and ``v``
(y-displacement, positive downwards) in channel 1; numpy arrays and torch tensors are both accepted.
Pillow is needed only for writing PNGs and building figures, and is imported on first use.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import numpy.typing as npt
import torch

__all__ = [
    "FIGURE_MARGIN",
    "average_endpoint_error",
    "endpoint_error",
    "flow_to_color",
    "save_flow_png",
]

# Anything that converts to an array: numpy arrays, torch tensors (any device), nested lists, PIL images.
ArrayOrTensor = npt.ArrayLike | torch.Tensor
PathLike = str | os.PathLike[str]

FIGURE_MARGIN = 8
"""Pixels of background around and between the panels of :func:`flow_figure`."""

_BACKGROUND = (255, 255, 255)
_TEXT_COLOR = (0, 0, 0)
_INVALID_GREY = (128, 128, 128)
_TITLE_GAP = 4  # pixels between a title's glyphs and the top of its panel

_FLOW_SHAPE = "(H, W, 2) (u = x-displacement, v = y-displacement)"

# ---------------------------------------------------------------------------------------------------------
# Colour wheel
# ---------------------------------------------------------------------------------------------------------

# (segment length, channel that ramps, ramps up?) walking red → yellow → green → cyan → blue → magenta and
# back to red. The uneven lengths are Baker et al.'s: more hue steps where the eye separates hues best.
_WHEEL_SEGMENTS: tuple[tuple[int, int, bool], ...] = (
    (15, 1, True),  # red → yellow: green rises
    (6, 0, False),  # yellow → green: red falls
    (4, 2, True),  # green → cyan: blue rises
    (11, 1, False),  # cyan → blue: green falls
    (13, 0, True),  # blue → magenta: red rises
    (6, 2, False),  # magenta → red: blue falls
)


def _build_color_wheel() -> np.ndarray:
    """The 55 wheel colours as a (55, 3) float array in 0..255, starting at pure red."""
    rows: list[list[float]] = []
    rgb = [255.0, 0.0, 0.0]
    for length, channel, rising in _WHEEL_SEGMENTS:
        for step in range(length):
            # Integer steps (floored) as in the reference tables, so colours match published images exactly.
            ramp = float(math.floor(255 * step / length))
            row = list(rgb)
            row[channel] = ramp if rising else 255.0 - ramp
            rows.append(row)
        rgb[channel] = 255.0 if rising else 0.0
    return np.array(rows, dtype=np.float64)


_COLOR_WHEEL = _build_color_wheel()

# ---------------------------------------------------------------------------------------------------------
# Input conversion and validation
# ---------------------------------------------------------------------------------------------------------


def _to_numpy(value: ArrayOrTensor, name: str, expected: str) -> np.ndarray:
    """Any array-like or tensor as a numpy array (floating tensors as float64: numpy lacks bfloat16)."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        if tensor.is_floating_point():
            tensor = tensor.to(torch.float64)
        elif tensor.is_complex():
            raise TypeError(f"{name} must be real-valued with shape {expected}, got a {tensor.dtype} tensor")
        return tensor.numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as error:  # ragged nested lists and the like
        raise TypeError(f"{name} must be an array or tensor of shape {expected}, got {type(value).__name__}") from error


def _check_real(array: np.ndarray, name: str, expected: str) -> None:
    """Reject dtypes that are not numbers (bool, complex, strings, objects) with a TypeError."""
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(f"{name} must hold real numbers, shape {expected}; got dtype {array.dtype}")


def _as_flow(flow: ArrayOrTensor, name: str = "flow") -> np.ndarray:
    """Validate a flow field and return it as a float64 (H, W, 2) numpy array."""
    array = _to_numpy(flow, name, _FLOW_SHAPE)
    _check_real(array, name, _FLOW_SHAPE)
    shape = tuple(array.shape)
    if array.ndim != 3 or shape[-1] != 2:
        hint = ""
        if array.ndim == 3 and shape[0] == 2:
            hint = "; channels-first? move the (u, v) axis last, e.g. flow.permute(1, 2, 0)"
        elif array.ndim == 4 and shape[-1] == 2:
            hint = "; a batch? pass one item, e.g. flow[0]"
        raise ValueError(f"{name} must have shape {_FLOW_SHAPE}, got {shape}{hint}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name} must have shape {_FLOW_SHAPE} with H, W > 0, got {shape}")
    return array.astype(np.float64, copy=False)


def _as_mask(valid: ArrayOrTensor, size: tuple[int, int]) -> np.ndarray:
    """Validate a validity mask of shape (H, W); 0/1 numbers (e.g. KITTI masks read as floats) become bool."""
    expected = f"({size[0]}, {size[1]})"
    array = _to_numpy(valid, "valid", expected)
    if array.dtype != np.bool_:
        _check_real(array, "valid", expected)
        if not np.all((array == 0) | (array == 1)):
            raise ValueError("valid must be a boolean mask (or hold only 0 and 1)")
        array = array != 0
    if tuple(array.shape) != size:
        raise ValueError(f"valid must have shape {expected} to match the flow, got {tuple(array.shape)}")
    return array


def _check_magnitude(max_magnitude: float) -> float:
    """max_magnitude as a positive finite float."""
    try:
        value = float(max_magnitude)
    except (TypeError, ValueError) as error:
        raise TypeError(f"max_magnitude must be a positive number, got {max_magnitude!r}") from error
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"max_magnitude must be positive and finite, got {max_magnitude!r}")
    return value


def _magnitude(uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel magnitude (0 where unknown) and the mask of pixels whose flow and magnitude are finite."""
    known = np.isfinite(uv).all(axis=-1)
    # Zero the unknown pixels first so NaN/inf never reach the arithmetic (no warnings, no NaN leaks).
    clean = np.where(known[..., None], uv, 0.0)
    magnitude = np.hypot(clean[..., 0], clean[..., 1])
    known &= np.isfinite(magnitude)  # hypot can still overflow for values near the float64 limit
    magnitude[~known] = 0.0
    return magnitude, known


def _largest_magnitude(uv: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Largest finite magnitude among the pixels in mask (all pixels by default); 0.0 when there are none."""
    magnitude, known = _magnitude(uv)
    if mask is not None:
        known &= mask
    return float(magnitude[known].max()) if known.any() else 0.0


# ---------------------------------------------------------------------------------------------------------
# Colour coding
# ---------------------------------------------------------------------------------------------------------


def flow_to_color(
    flow: ArrayOrTensor, max_magnitude: float | None = None, convert_to_bgr: bool = False
) -> np.ndarray:
    """Colour-code a flow field with the Middlebury colour wheel.

    Args:
        flow: ``(H, W, 2)`` array or tensor of (u, v) displacements; integer dtypes are converted.
        max_magnitude: magnitude that maps to a fully saturated colour. Default: the largest finite magnitude
            in ``flow``. Pixels beyond it keep their hue but are darkened (to 75 %), as in the standard code.
        convert_to_bgr: return BGR (e.g. for OpenCV) instead of RGB.

    Returns:
        ``(H, W, 3)`` uint8 image. Zero flow is white; pixels with non-finite flow (no ground truth) are black.
    """
    uv = _as_flow(flow)
    magnitude, known = _magnitude(uv)
    if max_magnitude is None:
        scale = float(magnitude[known].max()) if known.any() else 0.0
    else:
        scale = _check_magnitude(max_magnitude)
    if scale == 0.0:
        scale = 1.0  # all-zero (or all-unknown) flow: every radius is 0 anyway, so any scale gives white
    # Dividing the magnitude itself (rather than u and v before recomputing it) keeps the largest pixel at
    # exactly 1.0, so rounding can never push it over the edge into the darkened out-of-range branch.
    radius = magnitude / scale

    u = np.where(known, uv[..., 0], 0.0)
    # Adding 0.0 turns -0.0 into +0.0: atan2 is discontinuous at ±π, and without this a pure +x flow with a
    # negative-zero v would land on the wheel's last (magenta-tinted) entry instead of pure red.
    v = np.where(known, uv[..., 1], 0.0) + 0.0
    angle = np.arctan2(-v, -u) / np.pi  # in [-1, 1]; -1 (motion to the right) is the wheel's red start
    num_colors = _COLOR_WHEEL.shape[0]
    # Like the reference, spread the angle over entries 0..54, so the seam sits between the last entry and red.
    position = (angle + 1.0) / 2.0 * (num_colors - 1)
    lower = np.floor(position).astype(np.intp)
    upper = (lower + 1) % num_colors
    frac = (position - lower)[..., None]
    color = (1.0 - frac) * _COLOR_WHEEL[lower] + frac * _COLOR_WHEEL[upper]  # 0..255

    r = radius[..., None]
    # Inside the normalising radius, blend from white (r = 0) to the wheel colour (r = 1); outside, darken.
    color = np.where(r <= 1.0, 255.0 - r * (255.0 - color), color * 0.75)
    # The reference floors; the small nudge keeps values that are integers mathematically, but land a hair
    # below after floating-point arithmetic, from losing a whole unit.
    image = np.clip(np.floor(color + 1e-6), 0, 255).astype(np.uint8)
    image[~known] = 0
    if convert_to_bgr:
        image = np.ascontiguousarray(image[..., ::-1])
    return image


def _pil() -> ModuleType:
    """``PIL.Image``, imported on first use: it is needed only for images on disk and figures."""
    try:
        from PIL import Image
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("perceiverkit.viz needs Pillow for PNGs and figures: pip install pillow") from error
    return Image


def save_flow_png(flow: ArrayOrTensor, path: PathLike, max_magnitude: float | None = None) -> Path:
    """Write :func:`flow_to_color`'s image of ``flow`` as a PNG, creating parent directories; returns the path."""
    image = flow_to_color(flow, max_magnitude)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _pil().fromarray(image).save(target, format="PNG")
    return target


# ---------------------------------------------------------------------------------------------------------
# End-point error
# ---------------------------------------------------------------------------------------------------------


def _epe_and_mask(
    flow: ArrayOrTensor, ground_truth: ArrayOrTensor, valid: ArrayOrTensor | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel EPE (NaN where not valid) and the validity mask actually used."""
    pred = _as_flow(flow, "flow")
    truth = _as_flow(ground_truth, "ground_truth")
    if pred.shape != truth.shape:
        raise ValueError(f"flow {pred.shape} and ground_truth {truth.shape} must have the same (H, W, 2) shape")
    # A non-finite ground truth is a pixel without a measurement, so it is never valid, whatever the mask says.
    mask = np.isfinite(truth).all(axis=-1)
    if valid is not None:
        mask &= _as_mask(valid, pred.shape[:2])
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.hypot(pred[..., 0] - truth[..., 0], pred[..., 1] - truth[..., 1])
    error[~mask] = np.nan
    return error, mask


def endpoint_error(
    flow: ArrayOrTensor, ground_truth: ArrayOrTensor, valid: ArrayOrTensor | None = None
) -> np.ndarray:
    """Per-pixel end-point error ``‖flow − ground_truth‖₂`` as a float64 ``(H, W)`` array.

    Pixels outside ``valid`` (an ``(H, W)`` boolean mask) or with non-finite ground truth are NaN. A
    non-finite prediction at a valid pixel stays non-finite, so a broken prediction is never hidden.
    """
    return _epe_and_mask(flow, ground_truth, valid)[0]


def average_endpoint_error(
    flow: ArrayOrTensor, ground_truth: ArrayOrTensor, valid: ArrayOrTensor | None = None
) -> float:
    """Mean end-point error over the valid pixels (default: where the ground truth is finite).

    Raises:
        ValueError: if no pixel is valid.
    """
    error, mask = _epe_and_mask(flow, ground_truth, valid)
    if not mask.any():
        raise ValueError("no valid pixels: the mask is empty or the ground truth is nowhere finite")
    return float(error[mask].mean())
