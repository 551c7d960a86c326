"""``perceiverkit test``: a run's checkpoint measured on the test split of its config's data source, the only
config command that reads a test split."""

from __future__ import annotations

import argparse

from . import _evaluate_run
from ._evaluate_run import add_arguments

HELP = "measure a run's checkpoint (--ckpt best|last|PATH) on the data source's test split"


def run(args: argparse.Namespace) -> None:
    _evaluate_run.run(args, "test")


__all__ = ["HELP", "add_arguments", "run"]
