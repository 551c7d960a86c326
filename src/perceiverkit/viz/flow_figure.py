"""Side-by-side panel figures of optical flow: the frames, the flow, the ground truth and the per-pixel error."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .flow import (
    _BACKGROUND,
    _INVALID_GREY,
    _TEXT_COLOR,
    _TITLE_GAP,
    FIGURE_MARGIN,
    ArrayOrTensor,
    PathLike,
    _as_flow,
    _check_real,
    _epe_and_mask,
    _largest_magnitude,
    _pil,
    _to_numpy,
    flow_to_color,
)

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

__all__ = ["flow_figure", "save_flow_figure"]


_FRAME_SHAPE = "(H, W, 3) for arrays or (3, H, W) for tensors"


def _frame_to_hwc(frame: ArrayOrTensor, index: int, size: tuple[int, int]) -> np.ndarray:
    """One frame as an (H, W, 3) numeric array: tensors are channels-first, arrays channels-last."""
    name = f"frames[{index}]"
    is_tensor = isinstance(frame, torch.Tensor)
    array = _to_numpy(frame, name, _FRAME_SHAPE)
    _check_real(array, name, _FRAME_SHAPE)
    original = tuple(array.shape)
    if array.ndim == 2:  # grayscale
        array = array[..., None]
    elif array.ndim == 3 and is_tensor:
        array = np.moveaxis(array, 0, -1)
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{name} must have shape {_FRAME_SHAPE}, got {original}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    elif array.shape[-1] == 4:
        array = array[..., :3]  # drop alpha (RGBA PNGs)
    if array.shape[:2] != size:
        raise ValueError(f"{name} is {array.shape[0]}x{array.shape[1]} but the flow is {size[0]}x{size[1]}")
    return array


def _frames_to_uint8(frames: Sequence[ArrayOrTensor], size: tuple[int, int]) -> list[np.ndarray]:
    """Both frames as (H, W, 3) uint8, choosing one value range for the pair so they stay comparable."""
    try:
        items = list(frames)
    except TypeError as error:
        raise TypeError("frames must be a pair (frame 1, frame 2)") from error
    if len(items) != 2:
        raise ValueError(f"frames must be a pair (frame 1, frame 2), got {len(items)} items")
    arrays = [_frame_to_hwc(frame, i, size) for i, frame in enumerate(items)]

    floats = [a for a in arrays if np.issubdtype(a.dtype, np.floating)]
    finite = np.concatenate([a[np.isfinite(a)] for a in floats]) if floats else np.empty(0)
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    # Float ranges in order of how common they are; the range is decided over both frames together so that
    # a pair is never normalised two different ways.
    if low >= 0.0 and high <= 1.0:
        offset, gain = 0.0, 255.0  # [0, 1]
    elif low >= -1.0 and high <= 1.0:
        offset, gain = 1.0, 127.5  # [-1, 1], the range Perceiver IO's optical-flow preprocessing produces
    elif low >= 0.0 and high <= 255.0:
        offset, gain = 0.0, 1.0  # already 0..255, just stored as float
    else:
        offset, gain = -low, 255.0 / (high - low)  # anything else: stretch min..max to 0..255

    result = []
    for array in arrays:
        if np.issubdtype(array.dtype, np.floating):
            scaled = np.where(np.isfinite(array), (array + offset) * gain, 0.0)
            array = np.rint(scaled)
        result.append(np.clip(array, 0, 255).astype(np.uint8))
    return result


def _error_heatmap(error: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Error as a black → red → yellow → white ramp up to the largest finite valid error; invalid is grey."""
    finite = mask & np.isfinite(error)
    top = float(error[finite].max()) if finite.any() else 0.0
    # A valid pixel with a non-finite error is a broken prediction: show it at the hot end of the ramp.
    level = np.where(finite, np.nan_to_num(error) / top if top > 0 else 0.0, 1.0)
    level = np.clip(level, 0.0, 1.0)
    ramp = np.stack([np.clip(3.0 * level - k, 0.0, 1.0) for k in range(3)], axis=-1)
    image = np.rint(ramp * 255.0).astype(np.uint8)
    image[~mask] = _INVALID_GREY
    return image


def _figure_panels(
    frames: Sequence[ArrayOrTensor],
    flow: ArrayOrTensor,
    ground_truth: ArrayOrTensor | None,
    valid: ArrayOrTensor | None,
    max_magnitude: float | None,
) -> list[tuple[str, np.ndarray]]:
    """The (title, uint8 RGB image) panels of :func:`flow_figure`, left to right."""
    pred = _as_flow(flow, "flow")
    size = (pred.shape[0], pred.shape[1])
    first, second = _frames_to_uint8(frames, size)
    panels = [("frame 1", first), ("frame 2", second)]
    if ground_truth is None:
        if valid is not None:
            raise ValueError("valid masks the ground truth: pass ground_truth too")
        return [*panels, ("flow", flow_to_color(pred, max_magnitude))]

    error, mask = _epe_and_mask(pred, ground_truth, valid)
    truth = _as_flow(ground_truth, "ground_truth")
    scale = max_magnitude
    if scale is None:
        # The ground truth sets the shared scale: a prediction that overshoots shows up darkened, and one wild
        # predicted pixel cannot wash both images out to white. Fall back to the prediction's own maximum.
        scale = _largest_magnitude(truth, mask) or _largest_magnitude(pred) or 1.0
    shown_truth = np.where(mask[..., None], truth, np.nan)  # masked-out ground truth shows black, like NaN
    title = f"error, AEPE {float(error[mask].mean()):.3f}" if mask.any() else "error (no valid pixels)"
    return [
        *panels,
        ("flow", flow_to_color(pred, scale)),
        ("ground truth", flow_to_color(shown_truth, scale)),
        (title, _error_heatmap(error, mask)),
    ]


def _fit_title(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
               width: int) -> str:
    """Shorten text (marking the cut with '..') until it fits width pixels; '' if nothing fits."""
    if draw.textlength(text, font=font) <= width:
        return text
    for end in range(len(text) - 1, 0, -1):
        candidate = text[:end].rstrip() + ".."
        if draw.textlength(candidate, font=font) <= width:
            return candidate
    return ""


def _compose(panels: list[tuple[str, np.ndarray]], titles: bool) -> Image.Image:
    """Lay panels out left to right with FIGURE_MARGIN around and between them, titles above."""
    image_module = _pil()
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default()
    height, width = panels[0][1].shape[:2]
    # Size the title band by glyphs with ascender and descender, so every title fits whatever its letters.
    left_top = font.getbbox("Ag")
    title_height = (left_top[3] - left_top[1]) + _TITLE_GAP if titles else 0
    count = len(panels)
    canvas = image_module.new(
        "RGB",
        (count * width + (count + 1) * FIGURE_MARGIN, height + title_height + 2 * FIGURE_MARGIN),
        _BACKGROUND,
    )
    draw = ImageDraw.Draw(canvas)
    for i, (title, pixels) in enumerate(panels):
        left = FIGURE_MARGIN + i * (width + FIGURE_MARGIN)
        canvas.paste(image_module.fromarray(np.ascontiguousarray(pixels)), (left, FIGURE_MARGIN + title_height))
        if titles:
            text = _fit_title(draw, title, font, width)
            x = left + (width - draw.textlength(text, font=font)) / 2
            draw.text((x, FIGURE_MARGIN - left_top[1]), text, fill=_TEXT_COLOR, font=font)
    return canvas


def flow_figure(
    frames: Sequence[ArrayOrTensor],
    flow: ArrayOrTensor,
    ground_truth: ArrayOrTensor | None = None,
    valid: ArrayOrTensor | None = None,
    max_magnitude: float | None = None,
    titles: bool = True,
) -> Image.Image:
    """Side-by-side panels: frame 1, frame 2, predicted flow and, with ground truth, its flow and error map.

    Args:
        frames: the two input frames, each ``(H, W, 3)`` (array, PIL image) or ``(3, H, W)`` (torch tensor);
            grayscale and RGBA are accepted. Integers are read as 0..255; floats as [0, 1], else [-1, 1],
            else 0..255, else stretched min..max — one range chosen for both frames.
        flow: predicted ``(H, W, 2)`` flow.
        ground_truth: optional ``(H, W, 2)`` ground truth; adds its colour image, drawn on the same scale as
            the prediction, and a per-pixel end-point-error heat map (black → yellow → white up to the
            largest error, invalid pixels grey) titled with the average EPE.
        valid: optional ``(H, W)`` boolean mask of ground-truth pixels to trust (needs ``ground_truth``).
        max_magnitude: flow magnitude for full saturation. Default: the ground truth's largest valid
            magnitude when given, else the prediction's.
        titles: draw a title above each panel.

    Returns:
        An RGB image ``n * W + (n + 1) * FIGURE_MARGIN`` pixels wide for ``n`` panels (3 or 5).
    """
    return _compose(_figure_panels(frames, flow, ground_truth, valid, max_magnitude), titles)


def save_flow_figure(
    frames: Sequence[ArrayOrTensor],
    flow: ArrayOrTensor,
    path: PathLike,
    *,
    ground_truth: ArrayOrTensor | None = None,
    valid: ArrayOrTensor | None = None,
    max_magnitude: float | None = None,
    titles: bool = True,
) -> Path:
    """Build :func:`flow_figure` and save it (format from the suffix, PNG if none), creating parent dirs."""
    figure = flow_figure(frames, flow, ground_truth, valid, max_magnitude, titles)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.save(target, format=None if target.suffix else "PNG")
    return target
