"""What several commands share: loading a model for a task, and the ``--model`` help text."""

from __future__ import annotations

from typing import Any

MODEL_HELP = "checkpoint directory (ours or Transformers') or hub id (default: %(default)s)"


def load_model(source: str, task: str) -> Any:
    """Load the checkpoint at ``source`` (a directory or hub id); one of another task than ``task`` is refused
    with :class:`~perceiverkit.checkpoints.WrongTaskError` before its weights are read."""
    from ..checkpoints import from_pretrained

    return from_pretrained(source, task=task)
