"""Which perceiverkit functions, in which files, a forward pass calls from raw input to logits.

    python benchmarks/reading_walk.py [--reference] [--list]

Builds the full-size language model (2048 bytes) and learned-position ImageNet classifier (224²) with random
weights, traces one forward pass of each with ``sys.setprofile`` and prints how many distinct files and functions
of ``src/perceiverkit`` it entered (each function counted once, however often it runs), with ``--list`` the
functions in first-call order. ``--reference`` runs inside ``perceiverkit.accel.reference_path()``. This is the
count that docs/architecture.md's walk states.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

import torch

import perceiverkit
from perceiverkit import create_model
from perceiverkit.accel import reference_path

PACKAGE = Path(perceiverkit.__file__).parent


def trace(run: Callable[[], object]) -> tuple[list[str], list[str]]:
    """The ``file:function`` names ``run`` enters (first-call order) and the files they live in."""
    functions: list[str] = []
    files: list[str] = []

    def profile(frame, event, arg):  # noqa: ANN001 - sys.setprofile's signature
        if event != "call" or not frame.f_code.co_filename.startswith(str(PACKAGE)):
            return
        where = str(Path(frame.f_code.co_filename).relative_to(PACKAGE))
        name = f"{where}:{frame.f_code.co_qualname}"
        if name not in functions:
            functions.append(name)
        if where not in files:
            files.append(where)

    sys.setprofile(profile)
    try:
        with torch.no_grad():
            run()
    finally:
        sys.setprofile(None)
    return functions, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", action="store_true", help="run on the reference path")
    parser.add_argument("--list", action="store_true", help="print the functions in first-call order")
    args = parser.parse_args()
    torch.manual_seed(0)
    mlm = create_model("language-perceiver").eval()
    classifier = create_model("vision-perceiver-learned").eval()
    walks = {
        "masked LM, input_ids (1, 2048) -> logits": lambda: mlm(input_ids=torch.randint(0, 262, (1, 2048))),
        "image classifier (learned), pixel_values (1, 3, 224, 224) -> logits":
            lambda: classifier(pixel_values=torch.randn(1, 3, 224, 224)),
    }
    with reference_path() if args.reference else contextlib.nullcontext():
        for label, run in walks.items():
            functions, files = trace(run)
            print(f"{label}: {len(files)} files, {len(functions)} functions")
            if args.list:
                for name in functions:
                    print(f"    {name}")


if __name__ == "__main__":
    main()
