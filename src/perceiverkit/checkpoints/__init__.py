"""Loading and saving models: Transformers' Perceiver checkpoints, our own format, and hub ids.

This package is generic: it finds a checkpoint's task, config class and Transformers mapping through the task
registry (:mod:`perceiverkit.tasks.registry`) and names no task itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..config import ConfigError
from ..devices import resolve_device, resolve_dtype
from ..errors import PerceiverKitError
from ..tasks.base import TaskConfig, TaskModel, install_checkpoint_io
from ..tasks.registry import TaskSpec, get_task
from ..tasks.transformers_keys import KeyRule
from .files import CheckpointNotFoundError, load_state_dict
from .hub import resolve_source
from .keymap import CheckpointMismatchError, ConversionReport, apply_rules
from .native import CONFIG_FILE, read_native_config, read_processor_settings, save_model
from .training_runs import CKPT_SUFFIX, is_run_directory, read_lightning_checkpoint, resolve_run_directory
from .transformers_export import save_transformers
from .transformers_format import HF_CONFIG_FILE, architecture_of, read_hf_config

__all__ = [
    "CheckpointMismatchError",
    "CheckpointNotFoundError",
    "ConversionReport",
    "KeyRule",
    "WrongTaskError",
    "from_pretrained",
    "save_model",
    "save_pretrained",
    "save_transformers",
]

#: What ``save_pretrained(directory, format=...)`` writes: our format, or Transformers'.
SAVE_FORMATS = {"perceiverkit": save_model, "transformers": save_transformers}


class WrongTaskError(PerceiverKitError, ValueError):
    """A checkpoint (or model) is for another task than the one asked for."""


def _build_empty(spec: TaskSpec[Any], config: TaskConfig) -> TaskModel[Any]:
    # Parameters on the meta device cost no memory or init time; the checkpoint supplies every one of them.
    with torch.device("meta"):
        return spec.build(config)


def _check_loaded(model: TaskModel[Any], where: str) -> None:
    left = [name for name, t in model.state_dict().items() if t.is_meta]
    if left:
        raise CheckpointMismatchError(ConversionReport(left, [], []), where)


def from_pretrained(
    source: str | os.PathLike[str],
    *,
    task: str | None = None,
    dtype: str | torch.dtype = torch.float32,
    device: str | torch.device | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
) -> TaskModel[Any]:
    """Load a model, in eval mode, from a checkpoint directory, a training run, or a Hugging Face Hub id.

    ``source`` may be a directory saved by ``model.save_pretrained`` (``perceiverkit.json``), a directory in
    Transformers' format (``config.json`` naming a Perceiver architecture plus ``model.safetensors`` or
    ``pytorch_model.bin``), a training run's output folder (its finished ``model/``, else its best checkpoint,
    else ``checkpoints/last.ckpt``; which one is logged), a Lightning ``.ckpt`` written by perceiverkit training
    (read with ``weights_only=True``; the model is rebuilt from the config and processor settings stored in it),
    or a hub id such as ``deepmind/language-perceiver`` (fetched through the hub's cache). Every tensor must
    match: missing, unexpected and mis-shaped tensors raise :class:`CheckpointMismatchError` naming them. With
    ``task`` (a task name or alias), a checkpoint of any other task is refused with :class:`WrongTaskError`
    before its weights are loaded into a model.

    ``dtype`` is a torch dtype or its name (``"bfloat16"``); ``device`` a torch device, ``"cpu"``, ``"cuda"``,
    ``"mps"`` or ``"auto"`` (an accelerator when present); a wrong one is refused in one line before any download.
    ``revision`` and ``token`` go to the hub (a branch, tag or commit; an access token for private models).
    """
    wanted = get_task(task) if task is not None else None
    target_dtype, target_device = resolve_dtype(dtype), resolve_device(device)
    local = Path(source).expanduser()
    if is_run_directory(local):  # a training run's output folder: its model/, best or last checkpoint
        source = local = resolve_run_directory(local)
    if local.is_file() and local.suffix == CKPT_SUFFIX:
        contents = read_lightning_checkpoint(local)
        spec = get_task(contents.task)
        _check_task(spec, wanted, source)
        model = _native_model(spec, contents.config, contents.state_dict, str(local))
        contents.restore_processor(model)
        model.to(device=target_device, dtype=target_dtype)
        return model.eval()
    directory = resolve_source(source, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
                               token=token)
    if (directory / CONFIG_FILE).is_file():
        name, config = read_native_config(directory)
        spec = get_task(name)
        _check_task(spec, wanted, source)
        model = _native_model(spec, config, load_state_dict(directory), str(directory))
        model.load_processor(directory, read_processor_settings(directory))
    elif (directory / HF_CONFIG_FILE).is_file():
        hf_config = read_hf_config(directory)
        spec, arch = architecture_of(hf_config, str(directory / HF_CONFIG_FILE))
        _check_task(spec, wanted, source)
        config = arch.config_from_hf(hf_config)
        config.validate()
        model = _build_empty(spec, config)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        state, report = apply_rules(load_state_dict(directory), arch.key_rules(config), expected)
        _load_checked(model, state, report, str(directory))
        model.load_processor(directory, {})
    else:
        raise CheckpointNotFoundError(f"{directory} holds neither {CONFIG_FILE} nor {HF_CONFIG_FILE}")
    model.to(device=target_device, dtype=target_dtype)
    return model.eval()


def _native_model(spec: TaskSpec[Any], config: TaskConfig, state: dict[str, torch.Tensor],
                  where: str) -> TaskModel[Any]:
    """The ``spec`` model of ``config`` holding ``state``, whose names and shapes must be the model's own."""
    model = _build_empty(spec, config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    mismatched = [f"{k} (checkpoint {tuple(state[k].shape)}, model {expected[k]})"
                  for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    report = ConversionReport(sorted(set(expected) - set(state)), sorted(set(state) - set(expected)), mismatched)
    _load_checked(model, state, report, where)
    return model


def _load_checked(model: TaskModel[Any], state: dict[str, torch.Tensor], report: ConversionReport,
                  where: str) -> None:
    if not report.ok:
        raise CheckpointMismatchError(report, where)
    model.load_state_dict(state, strict=True, assign=True)
    _check_loaded(model, where)


def _check_task(found: TaskSpec[Any], wanted: TaskSpec[Any] | None, source: str | os.PathLike[str]) -> None:
    if wanted is not None and found is not wanted:
        raise WrongTaskError(f"{source} holds a model for task {found.name!r}; expected task {wanted.name!r}")


def save_pretrained(model: TaskModel[Any], directory: str | os.PathLike[str], format: str = "perceiverkit") -> Path:
    """Save ``model`` into ``directory`` in our format (``perceiverkit.json`` + ``model.safetensors``) or in
    Transformers' (``config.json`` + ``model.safetensors``, loadable by ``transformers.PerceiverFor…``)."""
    if format not in SAVE_FORMATS:
        raise ConfigError(f"format must be one of {sorted(SAVE_FORMATS)}, got {format!r}")
    path = SAVE_FORMATS[format](model, directory)
    if format != "perceiverkit":  # our format saves the processor itself, keeping its settings in perceiverkit.json
        model.save_processor(path)
    return path


install_checkpoint_io(save_pretrained, from_pretrained)
