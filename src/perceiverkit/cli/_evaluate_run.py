"""What ``validate`` and ``test`` share: the config arguments plus ``--ckpt``, and printing the metrics."""

from __future__ import annotations

import argparse
from typing import Literal

from ._training import add_config_arguments, check_config, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--ckpt", default="best", metavar="best|last|PATH",
                        help="which checkpoint of the run in output_dir: best (by the monitored metric), last "
                             "(last.ckpt), or a .ckpt path (default best)")


def run(args: argparse.Namespace, split: Literal["validation", "test"]) -> None:
    config = load_config(args)
    check_config(config)
    from ..train.evaluate import find_checkpoint

    find_checkpoint(config, args.ckpt)  # a missing checkpoint: one line before Lightning's import
    from ..train import run as lifecycle

    metrics, path = (lifecycle.validate if split == "validation" else lifecycle.test)(config, args.ckpt)
    print(f"{split} metrics of {path}:")
    for name, value in sorted(metrics.items()):
        print(f"  {name}: {value:.4f}")
