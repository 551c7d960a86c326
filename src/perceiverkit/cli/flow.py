"""``perceiverkit flow``: optical flow between consecutive frames, written as colour-coded PNGs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import PerceiverKitError
from ._common import MODEL_HELP, add_device_arguments, load_pipeline

HELP = "optical flow between consecutive frames, written as colour-coded PNGs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("frames", nargs="+", help="two or more image files of the same size")
    parser.add_argument("-o", "--output", default="flow.png", help="PNG path; numbered per pair for 3+ frames")
    parser.add_argument("--model", default="deepmind/optical-flow-perceiver", help=MODEL_HELP)
    parser.add_argument("--figure", action="store_true", help="also write a side-by-side figure of frames and flow")
    parser.add_argument("--tile-batch-size", type=int, default=4, help="tiles per forward pass (default 4)")
    add_device_arguments(parser)


def run(args: argparse.Namespace) -> None:
    from ..pipelines.flow import frame_pair
    from ..viz import save_flow_figure, save_flow_png

    if len(args.frames) < 2:
        raise PerceiverKitError(f"flow needs at least two frames, got {len(args.frames)}")
    estimate = load_pipeline("optical-flow", args, tile_batch_size=args.tile_batch_size)
    pairs = list(zip(args.frames[:-1], args.frames[1:], strict=True))
    output = Path(args.output)
    for i, (first, second) in enumerate(pairs):
        flow = estimate(first, second, progress=True)  # (H, W, 2)
        target = output if len(pairs) == 1 else output.with_name(f"{output.stem}_{i:04d}{output.suffix or '.png'}")
        save_flow_png(flow, target)
        magnitude = (flow**2).sum(-1) ** 0.5
        print(f"{first} → {second}: {target} (mean |flow| {magnitude.mean():.2f} px, max {magnitude.max():.2f} px)")
        if args.figure:
            frames = frame_pair(first, second)[0].numpy().astype("uint8").transpose(0, 2, 3, 1)  # (2, H, W, 3)
            save_flow_figure((frames[0], frames[1]), flow, target.with_name(target.stem + "_figure.png"))
        if len(pairs) > 1:
            print(f"  [{i + 1}/{len(pairs)}]", file=sys.stderr)
