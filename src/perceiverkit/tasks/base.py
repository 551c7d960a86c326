"""The base class of task models: config ownership, the wrapped :class:`PerceiverIO`, saving and loading."""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import torch
from torch import Tensor, nn

from ..layers.init import init_weights
from ..model import PerceiverIO


class TaskConfig(Protocol):
    """What every task config dataclass offers: a check of its own values (and, being a dataclass, its fields)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]  # what dataclasses.fields/replace need

    def validate(self) -> None: ...


ConfigT = TypeVar("ConfigT", bound=TaskConfig)
M = TypeVar("M", bound="TaskModel[Any]")

# checkpoints/ sits above tasks/ in the layer order, so TaskModel cannot import it; instead checkpoints/
# installs its save and load functions here when imported (on first use, if nothing imported it before).
_save: Callable[..., Path] | None = None
_load: Callable[..., TaskModel[Any]] | None = None


def install_checkpoint_io(save: Callable[..., Path], load: Callable[..., TaskModel[Any]]) -> None:
    """Called by :mod:`perceiverkit.checkpoints`: the functions behind ``save_pretrained``/``from_pretrained``."""
    global _save, _load
    _save, _load = save, load


def _checkpoint_io() -> tuple[Callable[..., Path], Callable[..., TaskModel[Any]]]:
    if _save is None or _load is None:  # named by string, as TaskSpec names Lightning: checkpoints sits above tasks
        importlib.import_module("perceiverkit.checkpoints")  # installs _save and _load
    assert _save is not None and _load is not None
    return _save, _load


# Sharing follows the same pattern: checkpoints/hub.py installs the upload behind push_to_hub.
_push: Callable[..., str] | None = None


def install_hub_upload(push: Callable[..., str]) -> None:
    """Called by :mod:`perceiverkit.checkpoints.hub`: the function behind ``TaskModel.push_to_hub``."""
    global _push
    _push = push


class TaskModel(nn.Module, Generic[ConfigT]):
    """A complete model for one task, built from a config dataclass around one :class:`PerceiverIO`.

    Subclasses set ``task`` (a unique name, used in saved checkpoints) and ``config_class``, build
    ``self.perceiver`` and register themselves with :func:`perceiverkit.tasks.registry.register_task`.
    """

    task: ClassVar[str]
    config_class: ClassVar[type[Any]]
    config: ConfigT
    perceiver: PerceiverIO

    def __init__(self, config: ConfigT) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        config.validate()
        self.config = config

    def reset_parameters(self, std: float = 0.02) -> None:
        """Re-initialise every weight for training from scratch."""
        init_weights(self, std)

    def set_activation_checkpointing(self, enabled: bool = True) -> None:
        """Recompute the latent self-attention stack in the backward pass instead of keeping its activations."""
        self.perceiver.encoder.gradient_checkpointing = enabled

    def set_half_precision_latents(self, enabled: bool = True) -> None:
        """Under autocast, carry the latents through the self-attention stack in the autocast dtype (see
        :attr:`perceiverkit.encoder.PerceiverEncoder.half_precision_latents`)."""
        self.perceiver.encoder.half_precision_latents = enabled

    def enable_input_checks(self, finite: bool = True) -> TaskModel[ConfigT]:
        """Opt in to checking every input for NaN and infinity (off by default: it costs a pass over the data)."""
        self.perceiver.check_finite = finite
        return self

    @property
    def device(self) -> torch.device:
        """Where the model's parameters are (its first parameter's device, as Transformers' ``model.device``)."""
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The model's floating-point precision (its first floating-point parameter's dtype)."""
        return next((p.dtype for p in self.parameters() if p.is_floating_point()), torch.float32)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of (unique) parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def save_processor(self, directory: Path) -> dict[str, Any]:
        """Save how this model's inputs are prepared, next to its weights: write files into ``directory`` (an
        image model's ``preprocessor_config.json``) and return settings to keep in ``perceiverkit.json`` (a text
        model's tokenizer). Nothing by default."""
        return {}

    def load_processor(self, directory: Path, settings: dict[str, Any]) -> None:
        """Restore what :meth:`save_processor` saved (``settings`` is its returned dict, empty for older
        checkpoints and Transformers' format); a model whose directory holds nothing keeps its defaults."""

    def check_transformers_format(self) -> None:
        """Refuse, with a one-line :class:`~perceiverkit.config.ConfigError`, input preparation that Transformers'
        format cannot record (its ``config.json`` keeps no processor settings). Nothing by default."""

    def save_pretrained(self, directory: str | os.PathLike[str], format: str = "perceiverkit") -> Path:
        """Write ``model.safetensors`` and ``perceiverkit.json`` to ``directory``; load with ``from_pretrained``.

        ``format="transformers"`` writes Transformers' ``config.json`` + ``model.safetensors`` instead, for
        ``transformers.PerceiverFor….from_pretrained`` (a feature Transformers lacks is refused, naming the field).
        """
        return _checkpoint_io()[0](self, directory, format)

    def push_to_hub(self, repo_id: str, *, token: str | None = None, private: bool | None = None,
                    commit_message: str = "Upload perceiverkit model", revision: str | None = None,
                    training_record: str | os.PathLike[str] | None = None, endpoint: str | None = None) -> str:
        """Upload this model to the Hugging Face Hub as ``repo_id`` (created if missing; ``private`` applies only
        then): the folder ``save_pretrained`` writes, plus a ``README.md`` model card whose metadata comes from
        the model and, if given, its training record (a training run's output folder). Returns the commit's URL."""
        if _push is None:
            importlib.import_module("perceiverkit.checkpoints")  # installs _push
        assert _push is not None
        return _push(self, repo_id, token=token, private=private, commit_message=commit_message,
                     revision=revision, training_record=training_record, endpoint=endpoint)

    @classmethod
    def from_pretrained(cls: type[M], source: str | os.PathLike[str], **kwargs: Any) -> M:
        """Load a checkpoint (ours, Transformers' format, or a hub id) that holds this kind of model."""
        model = _checkpoint_io()[1](source, **kwargs)
        if not isinstance(model, cls):
            raise TypeError(f"{source} holds a {type(model).__name__}, not a {cls.__name__}")
        return model


def pick_input(value: Tensor | None, alias: Tensor | None, name: str) -> Tensor:
    """The model input passed either by its Transformers name (``value``) or as ``inputs`` (``alias``)."""
    if value is not None and alias is not None:
        raise ValueError(f"pass either {name} or inputs (an alias), not both")
    chosen = value if value is not None else alias
    if chosen is None:
        raise ValueError(f"{name} is required")
    return chosen
