"""``perceiverkit convert``: a checkpoint (ours, Transformers', or a hub id) saved in our format or Transformers'."""

from __future__ import annotations

import argparse

HELP = "convert a checkpoint (directory or hub id) to our format, or to Transformers' (--to transformers)"
FORMATS = ("perceiverkit", "transformers")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="checkpoint directory (ours or Transformers') or hub id")
    parser.add_argument("destination", help="directory to write the converted checkpoint into")
    parser.add_argument("--to", choices=FORMATS, default="perceiverkit",
                        help="format to write: perceiverkit (perceiverkit.json + model.safetensors, the default) or "
                             "transformers (config.json + model.safetensors for transformers.PerceiverFor…)")


def run(args: argparse.Namespace) -> None:
    from ..checkpoints import from_pretrained

    model = from_pretrained(args.source)
    path = model.save_pretrained(args.destination, format=args.to)
    print(f"saved {type(model).__name__} ({model.num_parameters():,} parameters) in {args.to} format to {path}")
