"""The pictures the playground shows beyond those of :mod:`perceiverkit.viz`: enlarged small images, flow arrows
over a frame, input and reconstruction side by side as a WebM video, and a point cloud in 3-D."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw


def enlarge(image: np.ndarray, min_side: int = 224) -> np.ndarray:
    """``image`` ``(H, W[, 3])`` uint8 scaled up by a whole factor until its short side reaches ``min_side``, with
    nearest sampling: the shipped models read tiny images (28×28, 93×62), and a browser would blur them."""
    factor = max(1, math.ceil(min_side / min(image.shape[:2])))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def flow_arrows(frame: np.ndarray, flow: np.ndarray, step: int = 6, min_side: int = 372) -> np.ndarray:
    """``frame`` ``(H, W, 3)`` enlarged (see :func:`enlarge`), with one arrow per ``step`` pixels from each grid
    point to where the flow ``(H, W, 2)`` moves it; non-finite flow draws nothing."""
    height, width = flow.shape[:2]
    big = enlarge(frame, min_side)
    factor = big.shape[0] / height
    canvas = Image.fromarray(big).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    head = max(2.0, factor)
    for y in range(step // 2, height, step):
        for x in range(step // 2, width, step):
            u, v = (float(c) for c in flow[y, x])
            if not (math.isfinite(u) and math.isfinite(v)):
                continue
            x0, y0 = (x + 0.5) * factor, (y + 0.5) * factor
            x1, y1 = x0 + u * factor, y0 + v * factor
            draw.line([(x0, y0), (x1, y1)], fill=(255, 255, 0), width=max(1, round(factor / 3)))
            if math.hypot(u, v) * factor > head:  # an arrowhead only where the arrow is longer than it
                angle = math.atan2(y1 - y0, x1 - x0)
                for side in (-0.5, 0.5):
                    draw.line([(x1, y1), (x1 - head * math.cos(angle + side), y1 - head * math.sin(angle + side))],
                              fill=(255, 255, 0), width=max(1, round(factor / 3)))
            draw.point((x0, y0), fill=(255, 0, 0))
    return np.asarray(canvas)


def side_by_side_webm(left: np.ndarray, right: np.ndarray, path: str | Path, fps: float,
                      min_side: int = 160) -> Path:
    """Write frames ``left`` and ``right`` ``(T, H, W, 3)`` uint8 next to each other (enlarged, with a white gap)
    as a VP8 WebM, a video every browser plays without an H.264 decoder."""
    import av

    if left.shape != right.shape:
        raise ValueError(f"input and reconstruction differ in shape: {left.shape} and {right.shape}")
    gap = np.full((*enlarge(left[0], min_side).shape[:1], 8, 3), 255, np.uint8)
    frames = [np.concatenate([enlarge(a, min_side), gap, enlarge(b, min_side)], axis=1) for a, b in zip(left, right,
                                                                                                      strict=True)]
    height, width = frames[0].shape[:2]
    path = Path(path)
    with av.open(str(path), mode="w", format="webm") as container:
        stream: Any = container.add_stream("libvpx", rate=round(fps))  # Any: PyAV's stream types are loose
        stream.width, stream.height = width + width % 2, height + height % 2  # VP8 wants even sizes
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "10", "b:v": "2M"}
        for array in frames:
            padded = np.pad(array, ((0, height % 2), (0, width % 2), (0, 0)))
            for packet in stream.encode(av.VideoFrame.from_ndarray(padded, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def point_cloud_figure(points: np.ndarray, title: str) -> Any:  # Any: a matplotlib Figure (an optional extra)
    """A 3-D scatter of ``points`` ``(N, 3)``, coloured by height, with equal axes, as a matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg")  # no window: the figure is drawn to a PNG for the page
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 5), dpi=100)
    axes = figure.add_subplot(projection="3d")
    axes.scatter(points[:, 0], points[:, 1], points[:, 2], c=points[:, 2], cmap="viridis", s=6, depthshade=True)
    centre, radius = points.mean(0), float(np.abs(points - points.mean(0)).max())
    for set_limits, c in zip((axes.set_xlim, axes.set_ylim, axes.set_zlim), centre, strict=True):
        set_limits(c - radius, c + radius)
    axes.set_box_aspect((1, 1, 1))
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.set_zlabel("z")
    axes.set_title(title)
    return figure


__all__ = ["enlarge", "flow_arrows", "point_cloud_figure", "side_by_side_webm"]
