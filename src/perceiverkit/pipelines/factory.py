"""``pipeline(task, model, device=, dtype=)``: the pipeline a task names in the registry, around a model built or
loaded for it, in Transformers' style."""

from __future__ import annotations

import os
from typing import Any

import torch

from ..checkpoints import WrongTaskError, from_pretrained
from ..config import ConfigError
from ..devices import resolve_device, resolve_dtype
from ..tasks.base import TaskModel
from ..tasks.registry import TaskSpec, get_task, task_names


def pipeline_tasks() -> list[str]:
    """Every task name and alias that has a pipeline (``fill-mask``, ``text-classification``, ...), sorted."""
    return [name for name in task_names() if get_task(name).pipeline is not None]


def _pipeline_task(task: str) -> TaskSpec[Any]:
    try:
        spec = get_task(task)
    except ConfigError:
        raise ConfigError(f"unknown pipeline task {task!r}; expected one of {pipeline_tasks()}") from None
    if spec.pipeline is None:
        raise ConfigError(f"task {spec.name!r} has no pipeline; pipelines exist for {pipeline_tasks()}")
    return spec


def pipeline(task: str, model: TaskModel[Any] | str | os.PathLike[str] | None = None, *,
             device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
             token: str | bool | None = None, revision: str | None = None, **options: Any) -> Any:
    # Any: the pipeline class is named by the task at run time, and each returns its own result shapes.
    """The pipeline of ``task`` around ``model``, as ``transformers.pipeline``.

    ``task`` is a task name or alias; Transformers' names where it has the task (``"fill-mask"``,
    ``"text-classification"``, ``"image-classification"``), ours where it has none (``"optical-flow"``,
    ``"autoencoding"``). ``model`` is a loaded model, a checkpoint directory, a shipped model's name or a hub id
    (``revision`` and ``token`` go to the hub), or ``None`` for the task's first published checkpoint.
    ``device`` is ``"cpu"``, ``"cuda"``, ``"mps"``, ``"auto"`` (an accelerator when present) or a torch device;
    ``dtype`` ``"float32"``, ``"bfloat16"``, ``"float16"`` or a torch dtype; ``None`` leaves the model as it is
    (a loaded checkpoint: float32 on the CPU). ``options`` go to the pipeline class (``top_k``, ``batch_size``
    for fill-mask and classification, ``tile_batch_size`` for flow, ``chunk_size`` for autoencoding).
    A wrong task, device or dtype is refused in one line that names the choices, before anything is loaded.
    """
    spec = _pipeline_task(task)
    target_device, target_dtype = resolve_device(device), resolve_dtype(dtype)
    cls = spec.pipeline_class()
    if model is None:
        published = [preset.hub_id for preset in spec.presets if preset.hub_id]
        if not published:
            raise ConfigError(f"task {spec.name!r} has no published checkpoint; pass a model")
        model = published[0]
    if not isinstance(model, TaskModel):
        model = from_pretrained(model, task=spec.name, device=target_device, dtype=target_dtype or torch.float32,
                                token=token, revision=revision)
    elif model.task != spec.name:
        raise WrongTaskError(f"the {spec.name} pipeline got a model for task {model.task!r}; "
                             f"expected task {spec.name!r}")
    else:
        model.to(device=target_device, dtype=target_dtype)
    return cls(model.eval(), **options)
