"""A grid of small images, each captioned with a label coloured by whether it is right."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

RIGHT, WRONG = (0, 150, 0), (200, 0, 0)


def save_labelled_grid(images: np.ndarray, captions: Sequence[str], correct: Sequence[bool], path: str | Path,
                       columns: int = 8, scale: int = 3) -> Path:
    """Save ``images`` ``(N, H, W)`` or ``(N, H, W, 3)`` uint8 as a PNG grid, a caption under each image
    (green where ``correct``, red otherwise). Returns the path."""
    from PIL import Image, ImageDraw, ImageFont

    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) == 0:
        raise ValueError(f"images must be a non-empty uint8 array (N, H, W) or (N, H, W, 3), got "
                         f"{images.dtype} {images.shape}")
    if not len(images) == len(captions) == len(correct):
        raise ValueError(f"need one caption and one correctness flag per image: {len(images)} images, "
                         f"{len(captions)} captions, {len(correct)} flags")
    height, width = images.shape[1] * scale, images.shape[2] * scale
    caption_height = 14
    cell_w, cell_h = max(width, 80), height + caption_height + 4
    rows = -(-len(images) // columns)
    canvas = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for i, (image, caption, ok) in enumerate(zip(images, captions, correct, strict=True)):
        x, y = (i % columns) * cell_w, (i // columns) * cell_h
        tile = Image.fromarray(image).convert("RGB").resize((width, height), Image.Resampling.NEAREST)
        canvas.paste(tile, (x + (cell_w - width) // 2, y))
        draw.text((x + 2, y + height + 2), caption[:14], fill=RIGHT if ok else WRONG, font=font)
    path = Path(path)
    canvas.save(path)
    return path
