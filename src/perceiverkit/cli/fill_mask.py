"""``perceiverkit fill-mask``: fill the [MASK] bytes of texts with a masked language model."""

from __future__ import annotations

import argparse

from ._common import MODEL_HELP, load_model

HELP = "fill [MASK] bytes in texts with a masked language model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="+", help="texts containing [MASK] tokens, one per masked byte")
    parser.add_argument("--model", default="deepmind/language-perceiver", help=MODEL_HELP)
    parser.add_argument("--top-k", type=int, default=3, help="candidates to show per masked byte (default 3)")


def run(args: argparse.Namespace) -> None:
    from ..pipelines import FillMask

    fill = FillMask(load_model(args.model, "masked-lm"), top_k=args.top_k)
    for text, result in zip(args.text, fill(args.text), strict=True):
        print(f"{text!r} → {result.text!r}")
        for i, candidates in enumerate(result.candidates):
            print(f"    mask {i}: {candidates}")
