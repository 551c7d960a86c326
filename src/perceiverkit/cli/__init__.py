"""The ``perceiverkit`` command line: one module per command, each with ``HELP``, ``add_arguments(parser)`` and
``run(args)``, listed in :data:`COMMANDS`.

Errors about the input print one line and exit with status 2; a bug shows its traceback (see ``_errors``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Protocol

from . import (
    autoencode,
    bench,
    classify_image,
    convert,
    demo,
    eval_flow,
    export_onnx,
    fill_mask,
    flow,
    plot,
    presets,
    train,
)
from ._errors import one_line_message

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class Command(Protocol):
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> None: ...


#: Command name → its module, in the order ``--help`` lists them.
COMMANDS: dict[str, Command] = {
    "presets": presets,
    "fill-mask": fill_mask,
    "classify-image": classify_image,
    "flow": flow,
    "eval-flow": eval_flow,
    "autoencode": autoencode,
    "train": train,
    "export-onnx": export_onnx,
    "plot": plot,
    "convert": convert,
    "bench": bench,
    "demo": demo,
}


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command in :data:`COMMANDS`; the chosen one's name is ``args.command``."""
    parser = argparse.ArgumentParser(prog="perceiverkit", description="Perceiver IO models for any modality.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.HELP, description=command.HELP))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0, 2 for bad input, 130 when interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command].run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        message = one_line_message(error)
        if message is None:
            raise
        print(f"perceiverkit {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    return 0


__all__ = ["COMMANDS", "build_parser", "main"]
