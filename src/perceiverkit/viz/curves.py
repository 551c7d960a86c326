"""Training curves as PNG line charts, drawn with Pillow from a run's ``csv/metrics.csv``."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207)]


def read_metrics(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``{metric: [(step, value), ...]}`` from a Lightning CSV log (empty cells skipped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no metrics file at {path}")
    series: dict[str, list[tuple[int, float]]] = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            step = int(row.get("step") or 0)
            for name, value in row.items():
                if name not in ("step", "epoch") and value not in (None, ""):
                    series.setdefault(name, []).append((step, float(value)))
    return series


def plot_curves(series: dict[str, list[tuple[int, float]]], metrics: Sequence[str], path: str | Path,
                title: str = "", size: tuple[int, int] = (640, 400)) -> Path:
    """Draw ``metrics`` (names in ``series``) against the step on shared axes and save a PNG."""
    from PIL import Image, ImageDraw

    missing = [m for m in metrics if m not in series]
    if missing:
        raise ValueError(f"metrics {missing} are not in the log; it has {sorted(series)}")
    width, height = size
    left, right, top, bottom = 60, 20, 30, 50
    points = [p for m in metrics for p in series[m]]
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    if x1 == x0:
        x1 = x0 + 1
    if math.isclose(y0, y1):
        y0, y1 = y0 - 0.5, y1 + 0.5
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)

    def xy(step: float, value: float) -> tuple[float, float]:
        return (left + (step - x0) / (x1 - x0) * (width - left - right),
                height - bottom - (value - y0) / (y1 - y0) * (height - top - bottom))

    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for i in range(5):  # value ticks
        value = y0 + (y1 - y0) * i / 4
        _, y = xy(x0, value)
        draw.line([left - 4, y, left, y], fill="black")
        draw.text((4, y - 6), f"{value:.3g}", fill="black")
    for i in range(5):  # step ticks
        step = x0 + (x1 - x0) * i / 4
        x, _ = xy(step, y0)
        draw.line([x, height - bottom, x, height - bottom + 4], fill="black")
        draw.text((x - 10, height - bottom + 8), f"{step:.0f}", fill="black")
    draw.text((left, height - 18), "step", fill="black")
    draw.text((left, 8), title, fill="black")
    for k, name in enumerate(metrics):
        colour = COLOURS[k % len(COLOURS)]
        line = [xy(s, v) for s, v in sorted(series[name])]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        for x, y in line if len(line) < 30 else line[-1:]:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
        draw.text((left + 60 + 150 * k, height - 18), f"-- {name}", fill=colour)  # legend below the axes
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None,
             metrics: Sequence[str] | None = None) -> dict[str, Path]:
    """A training run's curves from its ``csv/metrics.csv``: ``loss.png`` (every ``*loss`` metric) and
    ``metrics.png`` (the others) in ``out_dir`` (default: the run's folder); ``metrics`` defaults to every logged
    metric but learning rates. Returns the written PNGs by group name."""
    run_dir = Path(run_dir)
    series = read_metrics(run_dir / "csv" / "metrics.csv")
    chosen = list(metrics) if metrics else [m for m in sorted(series) if not m.startswith("lr-")]
    groups = {"loss": [m for m in chosen if m.endswith("loss")],
              "metrics": [m for m in chosen if not m.endswith("loss")]}
    folder = run_dir if out_dir is None else Path(out_dir)
    return {name: plot_curves(series, group, folder / f"{name}.png", title=f"{run_dir.name}: {name}")
            for name, group in groups.items() if group}
