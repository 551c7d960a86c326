"""``perceiverkit classify-image``: the top-k labels of image files."""

from __future__ import annotations

import argparse

from ._common import MODEL_HELP, add_batch_arguments, load_pipeline, ranked

HELP = "top-k ImageNet (or the model's) labels for image files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--model", default="deepmind/vision-perceiver-learned", help=MODEL_HELP)
    add_batch_arguments(parser, top_k=5, what="labels", per="image")


def run(args: argparse.Namespace) -> None:
    classify = load_pipeline("image-classification", args, top_k=args.top_k, batch_size=args.batch_size)
    for path, results in zip(args.images, classify.predict(args.images, progress=True), strict=True):
        print(f"{path}: {ranked(results)}")
