"""``perceiverkit presets``: the official configurations, their tasks, sizes and checkpoints."""

from __future__ import annotations

import argparse

HELP = "list the official configurations and their sizes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments."""


def run(args: argparse.Namespace) -> None:
    import torch

    from ..tasks import PRESETS, TASKS

    print(f"{'preset':<26} {'task':<24} {'parameters':>12}  checkpoint")
    for preset in PRESETS.values():
        with torch.device("meta"):  # counting needs shapes, not memory
            count = TASKS[preset.task](preset.make_config()).num_parameters()
        print(f"{preset.name:<26} {preset.task:<24} {count:>12,}  {preset.hub_id or '-'}")
