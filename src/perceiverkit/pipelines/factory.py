"""``pipeline(task, model)``: the pipeline a task names in the registry, around a model built or loaded for it."""

from __future__ import annotations

import os
from typing import Any

import torch

from ..checkpoints import WrongTaskError, from_pretrained
from ..tasks.base import TaskModel
from ..tasks.registry import get_task


def pipeline(task: str, model: TaskModel[Any] | str | os.PathLike[str] | None = None, *,
             device: str | torch.device | None = None, dtype: torch.dtype | None = None, **options: Any) -> Any:
    """The pipeline of ``task`` (a task name or alias) around ``model``: a loaded model, a checkpoint directory
    or hub id, or ``None`` for the task's first published checkpoint. ``options`` go to the pipeline class
    (e.g. ``top_k`` for fill-mask, ``batch_size`` for image classification)."""
    spec = get_task(task)
    cls = spec.pipeline_class()  # before any download: a task without a pipeline fails at once
    if model is None:
        published = [preset.hub_id for preset in spec.presets if preset.hub_id]
        if not published:
            raise ValueError(f"task {spec.name!r} has no published checkpoint; pass a model")
        model = published[0]
    if not isinstance(model, TaskModel):
        model = from_pretrained(model, task=spec.name)
    elif model.task != spec.name:
        raise WrongTaskError(f"the {spec.name} pipeline got a model for task {model.task!r}; "
                             f"expected task {spec.name!r}")
    model.to(device=device, dtype=dtype)
    return cls(model, **options)
