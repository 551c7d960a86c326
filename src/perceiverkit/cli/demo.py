"""``perceiverkit demo``: a short offline tour of the library with the shipped models."""

from __future__ import annotations

import argparse
import time

HELP = "a short offline tour of the library"
#: The parts of the tour, in order (the names of ``perceiverkit.demo.SECTIONS``, kept here so --help needs no torch).
SECTIONS = ("fill-mask", "mlm-accuracy", "fashion-mnist", "flow", "architectures")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="demo-output", help="folder for the demo's files (default demo-output)")
    parser.add_argument("--models", default=None,
                        help="folder holding the shipped models (default: the copies packaged with perceiverkit)")
    parser.add_argument("--fashion-mnist-limit", type=int, default=None,
                        help="classify only the first N Fashion-MNIST test images (default: all 10,000)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS), metavar="SECTION",
                        help="run only these parts of the tour: " + ", ".join(SECTIONS) + " (default: all)")


def run(args: argparse.Namespace) -> None:
    from ..demo import run_demo

    start = time.perf_counter()
    run_demo(args.output, args.models, args.fashion_mnist_limit, sections=args.sections)
    print(f"done in {time.perf_counter() - start:.1f} s")
