"""``perceiverkit bench``: ours against Transformers on identical weights; the flags are
:class:`~perceiverkit.benchmark.BenchOptions`' fields."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "time ours against Transformers on identical weights (needs the bench extra)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..benchmark.options import add_arguments as add_bench_arguments

    add_bench_arguments(parser)


def run(args: argparse.Namespace) -> None:
    from ..benchmark import BenchOptions, run_benchmark, to_markdown
    from ..benchmark.report import JSON_NAME, MARKDOWN_NAME

    report = run_benchmark(BenchOptions.from_args(args))
    print(to_markdown(report))
    if args.out:
        print(f"written: {Path(args.out) / JSON_NAME}, {Path(args.out) / MARKDOWN_NAME}")
