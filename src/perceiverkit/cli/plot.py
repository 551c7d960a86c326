"""``perceiverkit plot``: PNG loss and metric curves of a training run."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "PNG loss and metric curves of a training run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="the run's output_dir")
    parser.add_argument("--metrics", nargs="*", help="metric names (default: all but learning rates)")


def run(args: argparse.Namespace) -> None:
    from ..viz import plot_curves, read_metrics

    run_dir = Path(args.run_dir)
    series = read_metrics(run_dir / "csv" / "metrics.csv")
    metrics = args.metrics or [m for m in sorted(series) if not m.startswith("lr-")]
    groups = {"loss": [m for m in metrics if m.endswith("loss")],
              "metrics": [m for m in metrics if not m.endswith("loss")]}
    for name, group in groups.items():
        if group:
            path = plot_curves(series, group, run_dir / f"{name}.png", title=f"{run_dir.name}: {name}")
            print(f"{name}: {path}")
