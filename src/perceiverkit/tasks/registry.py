"""The task registry: every task declares itself once, in a :class:`TaskSpec`, and everything else looks it up.

A task module (``text.py``, ``vision.py``, ...) defines its config, its model, its presets and its Transformers
mapping, and ends with one :func:`register_task` call. ``from_pretrained`` (checkpoints/), ``create_model``,
``pipeline(...)``, training (train/) and the command line find tasks here, by name or alias, by preset name or
by Transformers architecture name; none of them keeps a table of task names of its own.

Lightning stays optional, and train/ and pipelines/ sit above tasks/ in the layer order, so a spec names its
Lightning module, its data sources and its pipeline as ``"module:attribute"`` strings. They are imported only
when asked for (:meth:`TaskSpec.lightning_module_class`, :meth:`TaskSpec.data_source_class`,
:meth:`TaskSpec.pipeline_class`): importing a task never imports Lightning, and tasks/ never imports upward.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic

from ..config import ConfigError
from .base import ConfigT, TaskConfig, TaskModel
from .transformers_keys import KeyRule


@dataclass(frozen=True)
class Preset:
    """A named model: which task, with which configuration, matching which published checkpoint."""

    name: str
    task: str
    make_config: Callable[[], TaskConfig]
    description: str
    hub_id: str | None = None


@dataclass(frozen=True)
class TransformersArchitecture(Generic[ConfigT]):
    """How one Transformers architecture (``config.json: architectures[0]``) becomes one of our task models."""

    name: str
    config_from_hf: Callable[[dict[str, Any]], ConfigT]
    """Transformers' config dict → our config dataclass."""
    key_rules: Callable[[ConfigT], list[KeyRule]]
    """Our config → the table of our parameter names ← Transformers' tensor names (read backwards to save)."""
    config_to_hf: Callable[[ConfigT], dict[str, Any]] | None = None
    """Our config → Transformers' config dict (the inverse of ``config_from_hf``); raises :class:`ConfigError`
    naming the first field that Transformers' class cannot express (``None``: the task is not saved this way)."""


@dataclass(frozen=True)
class TaskSpec(Generic[ConfigT]):
    """Everything the rest of the library needs to know about one task."""

    name: str
    """The task's name, as saved in ``perceiverkit.json`` (``TaskModel.task``)."""
    model_class: type[TaskModel[ConfigT]]
    aliases: tuple[str, ...] = ()
    """Short names accepted wherever a task name is (``perceiverkit train mlm``)."""
    presets: tuple[Preset, ...] = ()
    transformers: tuple[TransformersArchitecture[ConfigT], ...] = ()
    lightning_module: str | None = None
    """``"module:Class"`` of the LightningModule that trains this task."""
    data_sources: Mapping[str, str] = field(default_factory=dict)
    """Data source name (``data.source`` of a training config) → ``"module:Class"`` of its LightningDataModule."""
    pipeline: str | None = None
    """``"module:Class"`` of the pipeline that runs this task on raw inputs."""
    pipeline_tag: str | None = None
    """The Hugging Face Hub's name for this task (``fill-mask``, ``image-classification``): the ``pipeline_tag``
    of a model card. ``None`` where the Hub has no such task (optical flow)."""
    transformers_architecture_of: Callable[[ConfigT], str] | None = None
    """Which of ``transformers`` saves a given config, for a task with several (the image classifiers differ in
    their preprocessor); raises :class:`ConfigError` naming the field that fits none. ``None``: the only one."""

    @property
    def config_class(self) -> type[ConfigT]:
        return self.model_class.config_class

    def build(self, config: ConfigT) -> TaskModel[ConfigT]:
        """A freshly initialised model of this task."""
        return self.model_class(config)

    def transformers_for(self, config: ConfigT) -> TransformersArchitecture[ConfigT]:
        """The Transformers architecture that saves a model of this config (its ``config_to_hf`` may still
        refuse a field)."""
        savable = [arch for arch in self.transformers if arch.config_to_hf is not None]
        if not savable:
            raise ConfigError(f"task {self.name!r} has no Transformers architecture to save to; "
                              f"Transformers has {architectures()}")
        if self.transformers_architecture_of is None:
            if len(savable) > 1:
                raise ConfigError(f"task {self.name!r} has several Transformers architectures and no rule to pick one")
            return savable[0]
        name = self.transformers_architecture_of(config)
        chosen = [arch for arch in savable if arch.name == name]
        if not chosen:
            raise ConfigError(f"task {self.name!r} picked Transformers architecture {name!r}, which it does not save")
        return chosen[0]

    def lightning_module_class(self) -> type[Any]:
        """The LightningModule class (imports Lightning)."""
        if self.lightning_module is None:
            raise ConfigError(f"task {self.name!r} has no training module")
        return _import(self.lightning_module)

    def data_source_class(self, source: str) -> type[Any]:
        """The LightningDataModule class of data source ``source`` (imports Lightning)."""
        if source not in self.data_sources:
            raise ConfigError(f"unknown data source {source!r} for task {self.name!r}; "
                              f"expected one of {sorted(self.data_sources)}")
        return _import(self.data_sources[source])

    def pipeline_class(self) -> type[Any]:
        if self.pipeline is None:
            raise ValueError(f"task {self.name!r} has no pipeline")
        return _import(self.pipeline)


def _import(path: str) -> type[Any]:
    """The class named by ``"module:Class"``; type[Any], as Lightning's classes cannot be named in tasks/."""
    module, _, attribute = path.partition(":")
    found = getattr(importlib.import_module(module), attribute)
    if not isinstance(found, type):
        raise TypeError(f"{path} must name a class, got {type(found).__name__}")
    return found


_SPECS: dict[str, TaskSpec[Any]] = {}
_ALIASES: dict[str, str] = {}
_ARCHITECTURES: dict[str, tuple[TaskSpec[Any], TransformersArchitecture[Any]]] = {}

#: Task name → model class (a view of the registry, kept for existing callers).
TASKS: dict[str, type[TaskModel[Any]]] = {}

#: Preset name → preset, every task's presets together.
PRESETS: dict[str, Preset] = {}


def register_task(spec: TaskSpec[Any]) -> TaskSpec[Any]:
    """Add a task with its presets and Transformers architectures; names and aliases are unique."""
    if spec.model_class.task != spec.name:
        raise ValueError(f"{spec.model_class.__name__}.task is {spec.model_class.task!r}, not {spec.name!r}")
    for name in (spec.name, *spec.aliases):
        if name in _SPECS or name in _ALIASES:
            raise ValueError(f"task name {name!r} is registered twice")
    for arch in spec.transformers:
        if arch.name in _ARCHITECTURES:
            raise ValueError(f"Transformers architecture {arch.name!r} is registered twice")
    _SPECS[spec.name] = spec
    TASKS[spec.name] = spec.model_class
    _ALIASES.update({alias: spec.name for alias in spec.aliases})
    _ARCHITECTURES.update({arch.name: (spec, arch) for arch in spec.transformers})
    for preset in spec.presets:
        register_preset(preset)
    return spec


def register_preset(preset: Preset) -> Preset:
    """Add a preset of a registered task; names are unique."""
    if preset.name in PRESETS:
        raise ValueError(f"preset {preset.name!r} already exists")
    if preset.task not in _SPECS:
        raise ValueError(f"preset {preset.name!r} names unknown task {preset.task!r}")
    PRESETS[preset.name] = preset
    return preset


def task_names() -> list[str]:
    """Every task name and alias, sorted."""
    return sorted([*_SPECS, *_ALIASES])


def get_task(name: str) -> TaskSpec[Any]:
    """The task called ``name`` (or an alias of it)."""
    spec = _SPECS.get(_ALIASES.get(name, name))
    if spec is None:
        raise ConfigError(f"unknown task {name!r}; expected one of {task_names()}")
    return spec


def architectures() -> list[str]:
    """Every supported Transformers architecture name, sorted."""
    return sorted(_ARCHITECTURES)


def task_for_architecture(name: str) -> tuple[TaskSpec[Any], TransformersArchitecture[Any]]:
    """The task that loads Transformers architecture ``name``, and its mapping."""
    if name not in _ARCHITECTURES:
        raise ConfigError(f"architecture {name!r} is not supported; expected one of {architectures()}")
    return _ARCHITECTURES[name]


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; available: {sorted(PRESETS)}")
    return PRESETS[name]


def preset_config(name: str) -> TaskConfig:
    """A fresh copy of the preset's configuration, to modify before building a model."""
    return get_preset(name).make_config()


def create_model(name: str, **overrides: object) -> TaskModel[TaskConfig]:
    """Build a randomly initialised model from a preset name, overriding top-level config fields.

    Example: ``create_model("language-perceiver", max_position_embeddings=512)``.
    """
    config = preset_config(name)
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"{type(config).__name__} has no field(s) {unknown}; fields are {sorted(fields)}")
    return get_task(get_preset(name).task).build(dataclasses.replace(config, **overrides))


__all__ = ["PRESETS", "TASKS", "Preset", "TaskSpec", "TransformersArchitecture", "architectures", "create_model",
           "get_preset", "get_task", "preset_config", "register_preset", "register_task", "task_for_architecture",
           "task_names"]
