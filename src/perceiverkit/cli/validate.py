"""``perceiverkit validate``: a run's checkpoint measured on its config's validation data."""

from __future__ import annotations

import argparse

from . import _evaluate_run
from ._evaluate_run import add_arguments

HELP = "measure a run's checkpoint (--ckpt best|last|PATH) on the config's validation data"


def run(args: argparse.Namespace) -> None:
    _evaluate_run.run(args, "validation")


__all__ = ["HELP", "add_arguments", "run"]
