"""What several commands share: loading a model for a task, and the ``--model`` help text."""

from __future__ import annotations

from typing import Any

from ..errors import PerceiverKitError

MODEL_HELP = "checkpoint directory (ours or Transformers') or hub id (default: %(default)s)"


class WrongTaskError(PerceiverKitError, ValueError):
    """A checkpoint holds a model for another task than the command needs."""


def load_model(source: str, task: str) -> Any:
    """Load the checkpoint at ``source`` (a directory or hub id) and check that it holds a model for ``task``."""
    from ..checkpoints import from_pretrained

    model = from_pretrained(source)
    if model.task != task:
        raise WrongTaskError(f"{source} holds a {model.task} model; this command needs a {task} model")
    return model
