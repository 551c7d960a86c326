"""The ``perceiverkit`` command line. Errors print one line (no traceback) and exit with status 2."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

import torch

from .config import ConfigError

EXIT_USAGE = 2


def _cmd_presets(args: argparse.Namespace) -> None:
    from .tasks import PRESETS, TASKS

    print(f"{'preset':<28} {'task':<20} {'parameters':>13}  checkpoint")
    for preset in PRESETS.values():
        with torch.device("meta"):  # counting needs shapes, not memory
            count = TASKS[preset.task](preset.make_config()).num_parameters()
        print(f"{preset.name:<28} {preset.task:<20} {count:>13,}  {preset.hub_id or '-'}")


def _cmd_fill_mask(args: argparse.Namespace) -> None:
    from .checkpoints import from_pretrained
    from .pipelines import FillMask

    fill = FillMask(from_pretrained(args.model), top_k=args.top_k)  # type: ignore[arg-type]
    for text, result in zip(args.text, fill(args.text)):
        print(f"{text!r} → {result.text!r}")
        for i, candidates in enumerate(result.candidates):
            print(f"    mask {i}: {candidates}")


def _cmd_convert(args: argparse.Namespace) -> None:
    from .checkpoints import from_pretrained

    model = from_pretrained(args.source)
    path = model.save_pretrained(args.destination)
    print(f"saved {type(model).__name__} ({model.num_parameters():,} parameters) to {path}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    run_demo(args.output)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="perceiverkit", description="Perceiver IO models for any modality.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("presets", help="list the official configurations and their sizes")
    p.set_defaults(run=_cmd_presets)

    p = sub.add_parser("fill-mask", help="fill [MASK] bytes in texts with a masked language model")
    p.add_argument("model", help="checkpoint directory (ours or Transformers') or hub id")
    p.add_argument("text", nargs="+", help="texts containing [MASK] tokens, one per masked byte")
    p.add_argument("--top-k", type=int, default=3, help="candidates to show per masked byte (default 3)")
    p.set_defaults(run=_cmd_fill_mask)

    p = sub.add_parser("convert", help="convert a Transformers checkpoint (directory or hub id) to our format")
    p.add_argument("source")
    p.add_argument("destination")
    p.set_defaults(run=_cmd_convert)

    p = sub.add_parser("demo", help="a short offline tour of the library")
    p.add_argument("--output", default="demo-output", help="folder for the demo's files (default demo-output)")
    p.set_defaults(run=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], None] = args.run
    start = time.perf_counter()
    try:
        run(args)
    except (ValueError, TypeError, OSError, ConfigError) as error:
        print(f"perceiverkit {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if args.command == "demo":
        print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
