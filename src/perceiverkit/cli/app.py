"""``perceiverkit app``: a local playground in the browser, one tab per task (the ``[app]`` extra)."""

from __future__ import annotations

import argparse

from ._common import add_device_arguments

HELP = "start a local web playground with one tab per task (fill-mask, images, flow, autoencoding, point clouds)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", action="append", default=[], metavar="DIR",
                        help="a checkpoint (our directory, a Transformers folder or a hub id) that replaces the "
                             "default model of its task's tab; repeat for several tasks")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default %(default)s: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default %(default)s)")
    add_device_arguments(parser)


def run(args: argparse.Namespace) -> None:
    # Imported here: `perceiverkit app --help` must not wait for torch or gradio.
    from ..app import AppSettings, serve

    serve(AppSettings(model_dirs=tuple(args.model_dir), host=args.host, port=args.port, device=args.device,
                      dtype=args.dtype))
