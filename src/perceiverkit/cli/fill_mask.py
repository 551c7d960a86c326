"""``perceiverkit fill-mask``: fill the [MASK] bytes of texts with a masked language model."""

from __future__ import annotations

import argparse

from ._common import MODEL_HELP, add_batch_arguments, load_pipeline, ranked

HELP = "fill [MASK] bytes in texts with a masked language model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="+", help="texts containing [MASK] tokens, one per masked byte")
    parser.add_argument("--model", default="deepmind/language-perceiver", help=MODEL_HELP)
    add_batch_arguments(parser, top_k=3, what="candidates", per="masked byte")


def run(args: argparse.Namespace) -> None:
    fill = load_pipeline("fill-mask", args, top_k=args.top_k, batch_size=args.batch_size)
    for text, per_mask in zip(args.text, fill.predict(args.text, progress=True), strict=True):
        print(f"{text!r} → {per_mask[0][0]['sequence']!r}")
        for i, candidates in enumerate(per_mask):
            print(f"    mask {i}: {ranked(candidates, 'token_str', quote=True)}")
