"""``perceiverkit plot``: PNG loss and metric curves of a training run."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "PNG loss and metric curves of a training run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="the run's output_dir")
    parser.add_argument("--metrics", nargs="*", help="metric names (default: all but learning rates)")


def run(args: argparse.Namespace) -> None:
    from ..viz.curves import plot_run

    for name, path in plot_run(Path(args.run_dir), metrics=args.metrics).items():
        print(f"{name}: {path}")
