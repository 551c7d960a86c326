"""``perceiverkit autoencode``: reconstruct a video clip's frames, audio and label."""

from __future__ import annotations

import argparse

from ._common import MODEL_HELP, add_device_arguments, load_pipeline

HELP = "reconstruct a video clip's frames, audio and label"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", nargs="?", help="video file with audio (default: the bundled Big Buck Bunny clip, "
                                                 "© Blender Foundation, CC BY 3.0)")
    parser.add_argument("-o", "--output", default="autoencode-output", help="output folder (default %(default)s)")
    parser.add_argument("--model", default="deepmind/multimodal-perceiver", help=MODEL_HELP)
    parser.add_argument("--start", type=float, default=0.0, help="start time in seconds (default 0)")
    parser.add_argument("--chunk-size", type=int, default=16384, help="queries decoded at once (default 16384)")
    add_device_arguments(parser)


def run(args: argparse.Namespace) -> None:
    from ..media import bundled_video
    from ..pipelines import save_outputs

    video = args.video or bundled_video()
    autoencode = load_pipeline("autoencoding", args, chunk_size=args.chunk_size)
    clip = autoencode.read(video, start=args.start)
    result = autoencode(clip, progress=True)
    paths = save_outputs(clip, result, args.output, clip.sample_rate)
    print(f"{video}: video PSNR {result.video_psnr:.2f} dB, audio PSNR {result.audio_psnr:.2f} dB, "
          f"label {result.label!r} ({result.score:.1%})")
    for kind, path in paths.items():
        print(f"  {kind}: {path}")
