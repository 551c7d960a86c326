"""``perceiverkit eval-flow``: end-point error on the Middlebury 2014 motorcycle stereo pair."""

from __future__ import annotations

import argparse

from ._common import MODEL_HELP, add_device_arguments, load_model

HELP = "end-point error on the Middlebury 2014 motorcycle stereo pair"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="deepmind/optical-flow-perceiver", help=MODEL_HELP)
    parser.add_argument("--scale", type=float, default=1.0, help="resize the pair by this factor (default 1)")
    parser.add_argument("--figure", help="write a figure of frames, flow, ground truth and error to this PNG")
    add_device_arguments(parser)


def run(args: argparse.Namespace) -> None:
    from ..evaluation import evaluate_flow_on_motorcycle
    from ..tasks.flow import OpticalFlow

    model = load_model(args.model, OpticalFlow, device=args.device, dtype=args.dtype)
    result = evaluate_flow_on_motorcycle(model, scale=args.scale, figure=args.figure)
    print(result)
    if args.figure:
        print(f"figure: {args.figure}")
