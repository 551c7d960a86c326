"""``perceiverkit demo``: a short offline tour of the library with the shipped models."""

from __future__ import annotations

import argparse
import time

HELP = "a short offline tour of the library"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="demo-output", help="folder for the demo's files (default demo-output)")
    parser.add_argument("--models", default="models", help="folder of the shipped models (default models)")
    parser.add_argument("--fashion-mnist-limit", type=int, default=None,
                        help="classify only the first N Fashion-MNIST test images (default: all 10,000)")


def run(args: argparse.Namespace) -> None:
    from ..demo import run_demo

    start = time.perf_counter()
    run_demo(args.output, args.models, args.fashion_mnist_limit)
    print(f"done in {time.perf_counter() - start:.1f} s")
