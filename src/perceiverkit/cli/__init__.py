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
    app,
    autoencode,
    bench,
    classify_image,
    classify_text,
    convert,
    demo,
    eval_flow,
    evaluate,
    export_onnx,
    fill_mask,
    fit,
    flow,
    generate,
    plot,
    predict,
    presets,
    test,
    train,
    validate,
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
    "generate": generate,
    "classify-image": classify_image,
    "classify-text": classify_text,
    "flow": flow,
    "eval-flow": eval_flow,
    "autoencode": autoencode,
    "fit": fit,
    "train": train,
    "validate": validate,
    "test": test,
    "evaluate": evaluate,
    "predict": predict,
    "export-onnx": export_onnx,
    "plot": plot,
    "convert": convert,
    "bench": bench,
    "demo": demo,
    "app": app,
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command in :data:`COMMANDS`; the chosen one's name is ``args.command``.

    With ``only`` (a command name), only that command's arguments are added: some commands build theirs from
    modules that import torch, and ``perceiverkit --help`` or ``perceiverkit train --help`` should not wait for it.
    """
    from .. import __version__

    parser = argparse.ArgumentParser(prog="perceiverkit", description="Perceiver IO models for any modality.")
    parser.add_argument("--version", action="version", version=f"perceiverkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        command_parser = sub.add_parser(name, help=command.HELP, description=command.HELP)
        if only is None or name == only:
            command.add_arguments(command_parser)
    return parser


def _chosen_command(argv: Sequence[str]) -> str:
    # The top-level parser has no option that takes a value, so the first word that is not an option is the
    # command (or a misspelling argparse reports with the list of commands).
    return next((word for word in argv if not word.startswith("-")), "")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0, 2 for bad input, 130 when interrupted)."""
    words = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(only=_chosen_command(words)).parse_args(words)
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
