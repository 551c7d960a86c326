"""``perceiverkit convert``: a Transformers checkpoint (directory or hub id) saved in our format."""

from __future__ import annotations

import argparse

HELP = "convert a Transformers checkpoint (directory or hub id) to our format"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="Transformers checkpoint directory or hub id")
    parser.add_argument("destination", help="directory to write our checkpoint into")


def run(args: argparse.Namespace) -> None:
    from ..checkpoints import from_pretrained

    model = from_pretrained(args.source)
    path = model.save_pretrained(args.destination)
    print(f"saved {type(model).__name__} ({model.num_parameters():,} parameters) to {path}")
