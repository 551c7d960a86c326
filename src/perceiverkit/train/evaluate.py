"""Measuring a trained model on a named split of a data source: the task's own validation/test step, run by
Lightning's ``Trainer.test`` or ``Trainer.validate`` with no logger and no checkpoints.

The data comes from a data source name (``digits``) or a YAML file with a ``data:`` section (a training config,
or a run's ``config.yaml``), with ``data.*`` overrides. It must describe the data as the model was trained on it:
the data source's class names and input preparation are checked against those the model saved, and a difference
is one line, not a silently wrong figure.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..checkpoints import from_pretrained
from ..checkpoints.training_runs import CKPT_SUFFIX, MODEL_DIR, model_record
from ..config import ConfigError, config_from_dict
from ..tasks.base import TaskModel
from ..tasks.registry import get_task
from .config import DataSpec, OptimConfig, TrainConfig, apply_override

#: Split name → the Trainer method that measures it (and the prefix of the metrics it logs).
SPLITS = {"test": "test", "validation": "validate"}
#: Where a run keeps its resolved settings (the data section is read from it when no data is named).
RUN_CONFIG = "config.yaml"


@dataclass
class EvaluationData:
    """The data to measure on: a data source, its settings, and what the run trained with around it (its seed,
    which some sources split by, and its task options)."""

    spec: DataSpec
    seed: int = 0
    task_options: dict[str, Any] = field(default_factory=dict)


def read_evaluation_data(data: str | os.PathLike[str], overrides: Sequence[str] = ()) -> EvaluationData:
    """The data a source name or a YAML config (``data:`` section, ``seed`` and ``task_options``) names, with
    ``data.key=value`` overrides; relative paths in a config start at its folder."""
    import yaml

    path = Path(data)
    settings: dict[str, Any] = {}
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"no config file at {path}; pass a YAML file with a data: section, or a data source name")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(loaded, dict) or not isinstance(loaded.get("data"), dict):
            raise ConfigError(f"{path} has no data: section (a mapping with source, options, ...)")
        settings = {"data": {"base_dir": str(path.resolve().parent), **loaded["data"]},
                    "seed": loaded.get("seed", 0), "task_options": loaded.get("task_options") or {}}
    else:
        settings = {"data": {"source": os.fspath(data)}, "seed": 0, "task_options": {}}
    for assignment in overrides:
        if not assignment.strip().startswith("data."):
            raise ConfigError(f"evaluate takes data settings only (data.options.NAME=VALUE, data.batch_size=N), "
                              f"got {assignment!r}")
        apply_override(settings, assignment)
    spec = config_from_dict(DataSpec, settings["data"], where="data")
    if not spec.source:
        raise ConfigError("the data names no source: set data.source")
    seed = settings["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    if not isinstance(settings["task_options"], dict):
        raise ConfigError(f"task_options must be a mapping, got {settings['task_options']!r}")
    return EvaluationData(spec, seed, dict(settings["task_options"]))


def run_config_of(model: str | os.PathLike[str]) -> Path | None:
    """The ``config.yaml`` of the training run ``model`` comes from: a run's folder, its ``model/`` folder or one
    of its checkpoints; None when there is none (a model saved elsewhere)."""
    path = Path(model)
    if path.suffix == CKPT_SUFFIX:  # output_dir/checkpoints/NAME.ckpt
        folder = path.parent.parent
    elif path.name == MODEL_DIR:  # output_dir/model
        folder = path.parent
    else:
        folder = path
    return folder / RUN_CONFIG if (folder / RUN_CONFIG).is_file() else None


def _check_data_matches(model: TaskModel[Any], data: Any, source: str) -> None:
    """Refuse data whose class names or input preparation differ from the model's (what it saved)."""
    before = model_record(model)
    data.prepare_model(model)  # the data's own class names and preprocessing; raises on a class-count mismatch
    after = model_record(model)
    labels = before["config"].get("labels"), after["config"].get("labels")
    if labels[0] and labels[0] != labels[1]:
        raise ConfigError(f"the data source {source!r} names the classes {list(labels[1] or [])} but the model was "
                          f"trained on {list(labels[0])}; evaluate on data with the model's classes")
    if (before["processor"], before["processor_files"]) != (after["processor"], after["processor_files"]):
        raise ConfigError(f"the data source {source!r} prepares inputs differently from the model's saved "
                          f"processor settings; use the data options the model was trained with (its run's "
                          f"{RUN_CONFIG})")


def find_checkpoint(config: TrainConfig, ckpt: str = "best") -> Path:
    """The checkpoint that ``validate`` / ``test`` read: ``best`` (the one the run's ``ModelCheckpoint`` recorded
    as best by the monitored metric), ``last`` (``last.ckpt``) or a path to a ``.ckpt`` file. Here rather than
    beside ``validate`` in :mod:`~perceiverkit.train.run`, which loads Lightning: a missing checkpoint is one line
    before that import."""
    from ..checkpoints.training_runs import best_checkpoint

    folder = Path(config.output_dir) / "checkpoints"
    if ckpt not in ("best", "last"):
        path = Path(ckpt)
        if not path.is_file():
            raise ConfigError(f"--ckpt {ckpt}: no such checkpoint file; give best, last or a .ckpt path")
        return path
    found = folder / "last.ckpt" if ckpt == "last" else best_checkpoint(folder) if folder.is_dir() else None
    if found is None or not found.is_file():
        what = "last.ckpt" if ckpt == "last" else "best checkpoint (save_top_k=0, or no validation ran yet)"
        # output_dir, unlike the data's paths, starts at the working directory: a config run from elsewhere than
        # its fit looks for another folder, which the line then names.
        where = "" if Path(config.output_dir).is_absolute() else f" (output_dir starts at the working directory, " \
            f"{Path.cwd()})"
        raise ConfigError(f"no {what} in {folder}{where}; train first (perceiverkit fit with output_dir="
                          f"{config.output_dir}) or give --ckpt last or a .ckpt path")
    return found


def evaluate(model: str | os.PathLike[str] | TaskModel[Any], data: EvaluationData, split: str = "test", *,
             accelerator: str = "auto", progress: bool = False) -> dict[str, float]:
    """The task's metrics of ``model`` (a loaded model, or anything ``from_pretrained`` takes: a model folder, a
    training run, a ``.ckpt``) on ``split`` (``test`` or ``validation``) of ``data``, by the task's own
    Lightning validation/test step; e.g. ``{"test/loss": 0.31, "test/accuracy": 0.92}``."""
    import lightning as L

    from .datamodules import ClassCountError  # Lightning's: imported with it, not before

    if split not in SPLITS:
        raise ConfigError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    if not isinstance(model, TaskModel):
        model = from_pretrained(model)
    spec = get_task(model.task)
    source_class = spec.data_source_class(data.spec.source)
    datamodule = source_class(data.spec, model.config, data.seed)
    try:
        # Before the Trainer is made (its device banners would come first): a source without a test split says so.
        datamodule.setup("test" if split == "test" else "validate")
        _check_data_matches(model, datamodule, data.spec.source)
    except ClassCountError as error:
        # The data source words it for training (set num_labels); a trained model's classes are fixed.
        raise ConfigError(f"the data source {data.spec.source!r} has {len(error.classes)} classes but the model "
                          f"predicts {error.num_labels}; evaluate on data with the model's classes") from None
    # The optimiser settings are never used: the module only runs its evaluation step.
    module = spec.lightning_module_class()(model, OptimConfig(), 1, **data.task_options)
    trainer = L.Trainer(accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=progress, enable_model_summary=False)
    run = trainer.test if split == "test" else trainer.validate
    results = run(module, datamodule=datamodule, verbose=False)
    return {name: float(value) for name, value in sorted(results[0].items())
            if not torch.is_tensor(value) or value.numel() == 1}


__all__ = ["SPLITS", "EvaluationData", "evaluate", "find_checkpoint", "read_evaluation_data", "run_config_of"]
