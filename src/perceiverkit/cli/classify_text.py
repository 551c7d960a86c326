"""``perceiverkit classify-text``: the top-k labels of texts."""

from __future__ import annotations

import argparse

from ._common import MODEL_HELP, add_batch_arguments, load_pipeline, ranked

HELP = "top-k labels for texts with a text classifier"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="+", help="texts to classify")
    parser.add_argument("--model", required=True, help=MODEL_HELP.replace(" (default: %(default)s)", ""))
    add_batch_arguments(parser, top_k=1, what="labels", per="text")


def run(args: argparse.Namespace) -> None:
    classify = load_pipeline("text-classification", args, top_k=args.top_k, batch_size=args.batch_size)
    for text, results in zip(args.text, classify.predict(args.text, progress=True), strict=True):
        print(f"{text!r}: {ranked(results)}")
