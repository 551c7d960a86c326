"""``perceiverkit export-onnx``: export a model to ONNX and check it with onnxruntime."""

from __future__ import annotations

import argparse

HELP = "export a model to ONNX and check it with onnxruntime"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="checkpoint directory or hub id")
    parser.add_argument("output", help="path of the .onnx file")
    parser.add_argument("--batch-size", type=int, default=2, help="example batch size (default 2)")
    parser.add_argument("--sequence-length", type=int, help="example length for text and point clouds")
    parser.add_argument("--no-verify", action="store_true", help="skip the onnxruntime comparison")


def run(args: argparse.Namespace) -> None:
    from ..checkpoints import from_pretrained
    from ..export import export_onnx

    model = from_pretrained(args.model)
    path, diff = export_onnx(model, args.output, batch_size=args.batch_size, sequence_length=args.sequence_length,
                             verify=not args.no_verify)
    check = "" if diff is None else f"; onnxruntime matches PyTorch within {diff:.2e}"
    print(f"exported {type(model).__name__} to {path}{check}")
