"""Pictures of videos: frame grids and side-by-side animated GIFs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

MARGIN = 4


def save_frame_grid(rows: Sequence[np.ndarray], path: str | Path, row_titles: Sequence[str] | None = None,
                    max_columns: int = 8) -> Path:
    """One row per video ``(T, H, W, 3)`` uint8 (the same shape each), up to ``max_columns`` evenly spaced frames."""
    from PIL import Image, ImageDraw

    if not rows:
        raise ValueError("no videos to draw")
    shapes = {r.shape for r in rows}
    if len(shapes) != 1 or len(rows[0].shape) != 4 or rows[0].shape[-1] != 3:
        raise ValueError(f"videos must share one (frames, height, width, 3) shape, got {sorted(shapes)}")
    frames, height, width, _ = rows[0].shape
    picks = np.unique(np.linspace(0, frames - 1, min(max_columns, frames)).round().astype(int))
    title_h = 14 if row_titles else 0
    grid = Image.new("RGB", (MARGIN + len(picks) * (width + MARGIN),
                             MARGIN + len(rows) * (height + title_h + MARGIN)), "white")
    draw = ImageDraw.Draw(grid)
    for r, video in enumerate(rows):
        top = MARGIN + r * (height + title_h + MARGIN)
        if row_titles:
            draw.text((MARGIN, top), row_titles[r], fill="black")
        for c, t in enumerate(picks):
            grid.paste(Image.fromarray(video[t]), (MARGIN + c * (width + MARGIN), top + title_h))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return path


def save_comparison_gif(left: np.ndarray, right: np.ndarray, path: str | Path, fps: float = 25.0) -> Path:
    """An animated GIF with ``left`` and ``right`` videos ``(T, H, W, 3)`` uint8 side by side, looping."""
    from PIL import Image

    if left.shape != right.shape:
        raise ValueError(f"videos must have the same shape, got {left.shape} and {right.shape}")
    pairs = [Image.fromarray(np.concatenate([a, np.full((a.shape[0], MARGIN, 3), 255, np.uint8), b], axis=1))
             for a, b in zip(left, right, strict=True)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pairs[0].save(path, save_all=True, append_images=pairs[1:], duration=round(1000 / fps), loop=0)
    return path
