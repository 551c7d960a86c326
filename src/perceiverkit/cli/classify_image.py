"""``perceiverkit classify-image``: the top-k labels of image files."""

from __future__ import annotations

import argparse

from ._common import MODEL_HELP, load_model

HELP = "top-k ImageNet (or the model's) labels for image files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--model", default="deepmind/vision-perceiver-learned", help=MODEL_HELP)
    parser.add_argument("--top-k", type=int, default=5, help="labels per image (default 5)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")


def run(args: argparse.Namespace) -> None:
    from ..pipelines import ImageClassification

    classify = ImageClassification(load_model(args.model, "image-classification"), batch_size=args.batch_size)
    for path, predictions in zip(args.images, classify(args.images, top_k=args.top_k, progress=True), strict=True):
        ranked = ", ".join(f"{p.label} ({p.probability:.1%})" for p in predictions)
        print(f"{path}: {ranked}")
