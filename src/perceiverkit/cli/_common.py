"""What several commands share: loading a model for a task, the ``--model`` help text, and the ``--device`` /
``--dtype`` flags of every inference command."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TypeVar

from ..devices import DEVICE_CHOICES, DTYPE_CHOICES

if TYPE_CHECKING:  # the command line imports torch only when a command runs
    from ..tasks.base import TaskModel

M = TypeVar("M", bound="TaskModel[Any]")

MODEL_HELP = "checkpoint directory (ours or Transformers'), shipped model name or hub id (default: %(default)s)"


def load_model(source: str, kind: type[M], device: str | None = None, dtype: str | None = None) -> M:
    """Load the checkpoint at ``source`` (a directory or hub id) on ``device`` in ``dtype`` as a ``kind`` model; one
    of another task is refused with :class:`~perceiverkit.checkpoints.WrongTaskError` before its weights are read."""
    from ..checkpoints import from_pretrained

    model = from_pretrained(source, task=kind.task, device=device, dtype=dtype or "float32")
    if not isinstance(model, kind):  # the task check above refuses any other model; this names the type
        raise TypeError(f"expected a {kind.__name__}, got {type(model).__name__}")
    return model


def add_batch_arguments(parser: argparse.ArgumentParser, top_k: int, what: str, per: str) -> None:
    """``--top-k`` (``what`` to show ``per`` input), ``--batch-size``, ``--device`` and ``--dtype``: the flags of
    the commands that rank candidates for a batch of inputs."""
    parser.add_argument("--top-k", type=int, default=top_k, help=f"{what} to show per {per} (default {top_k})")
    parser.add_argument("--batch-size", type=int, default=8, help="inputs per forward pass (default 8)")
    add_device_arguments(parser)


def ranked(results: list[dict[str, Any]], name: str = "label", quote: bool = False) -> str:
    """``"cat (81.0%), dog (12.5%)"``: the results' ``name`` (in quotes, to show a space or a newline) and
    ``score``, best first."""
    return ", ".join(f"{r[name]!r} ({r['score']:.1%})" if quote else f"{r[name]} ({r['score']:.1%})"
                     for r in results)


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--dtype``. The values are checked by :mod:`perceiverkit.devices` when the command runs
    (not by argparse ``choices``), so a wrong one, or an accelerator this machine lacks, is one line."""
    parser.add_argument("--device", default="auto", metavar="{" + ",".join(DEVICE_CHOICES) + "}",
                        help="where the model runs; auto: CUDA, else MPS, when present, else the CPU (default auto)")
    parser.add_argument("--dtype", default="float32", metavar="{" + ",".join(DTYPE_CHOICES) + "}",
                        help="the model's precision (default float32)")


def load_pipeline(task: str, args: argparse.Namespace, **options: Any) -> Any:  # Any: as pipeline()
    """The pipeline of ``task`` around ``args.model``, on ``args.device`` in ``args.dtype``."""
    from ..pipelines import pipeline

    return pipeline(task, args.model, device=args.device, dtype=args.dtype, **options)
