"""The base class of task models: config ownership, a registry by task name, saving and loading."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from torch import nn

from ..layers.init import init_weights

#: Task name → model class. Filled in as task modules are imported.
TASKS: dict[str, type[TaskModel]] = {}

M = TypeVar("M", bound="TaskModel")


class TaskModel(nn.Module):
    """A complete model for one task, built from a config dataclass.

    Subclasses set ``task`` (a unique name, used in saved checkpoints) and ``config_class``.
    """

    task: ClassVar[str]
    config_class: ClassVar[type]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("task")
        if name is not None:
            if name in TASKS and TASKS[name] is not cls:
                raise RuntimeError(f"task {name!r} is registered twice")
            TASKS[name] = cls

    def __init__(self, config: Any) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        config.validate()
        self.config = config

    def reset_parameters(self, std: float = 0.02) -> None:
        """Re-initialise every weight for training from scratch."""
        init_weights(self, std)

    def enable_input_checks(self, finite: bool = True) -> TaskModel:
        """Opt in to checking every input for NaN and infinity (off by default: it costs a pass over the data)."""
        self.perceiver.check_finite = finite
        return self

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of (unique) parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``model.safetensors`` and ``perceiverkit.json`` to ``directory``; load with ``from_pretrained``."""
        from ..checkpoints.native import save_model

        return save_model(self, directory)

    @classmethod
    def from_pretrained(cls: type[M], source: str | os.PathLike[str], **kwargs: Any) -> M:
        """Load a checkpoint (ours, Transformers' format, or a hub id) that holds this kind of model."""
        from ..checkpoints import from_pretrained

        model = from_pretrained(source, **kwargs)
        if not isinstance(model, cls):
            raise TypeError(f"{source} holds a {type(model).__name__}, not a {cls.__name__}")
        return model
