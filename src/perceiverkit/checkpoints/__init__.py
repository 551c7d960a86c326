"""Loading and saving models: Transformers' Perceiver checkpoints, our own format, and hub ids."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..config import ConfigError
from ..tasks.base import TASKS, TaskModel
from .files import CheckpointNotFoundError, load_state_dict
from .hub import resolve_source
from .keymap import CheckpointMismatchError, ConversionReport, KeyRule, apply_rules
from .native import CONFIG_FILE, read_native_config, save_model
from .transformers_format import ARCHITECTURES, architecture_of

__all__ = [
    "ARCHITECTURES",
    "CheckpointMismatchError",
    "CheckpointNotFoundError",
    "ConversionReport",
    "KeyRule",
    "from_pretrained",
    "save_model",
]

HF_CONFIG_FILE = "config.json"


def _read_hf_config(directory: Path) -> dict[str, Any]:
    where = directory / HF_CONFIG_FILE
    try:
        data = json.loads(where.read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"{where} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must hold a JSON object")
    return data


def _build_empty(task: str, config: Any) -> TaskModel:
    # Parameters on the meta device cost no memory or init time; the checkpoint supplies every one of them.
    with torch.device("meta"):
        return TASKS[task](config)


def _check_loaded(model: TaskModel, where: str) -> None:
    left = [name for name, t in model.state_dict().items() if t.is_meta]
    if left:
        raise CheckpointMismatchError(ConversionReport(left, [], []), where)


def from_pretrained(
    source: str | os.PathLike[str],
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
) -> TaskModel:
    """Load a model, in eval mode, from a checkpoint directory or a Hugging Face Hub id.

    ``source`` may be a directory saved by ``model.save_pretrained`` (``perceiverkit.json``), a directory in
    Transformers' format (``config.json`` naming a Perceiver architecture plus ``model.safetensors`` or
    ``pytorch_model.bin``), or a hub id such as ``deepmind/language-perceiver`` (fetched through the hub's
    cache). Every tensor must match: missing, unexpected and mis-shaped tensors raise
    :class:`CheckpointMismatchError` naming them.
    """
    directory = resolve_source(source, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
    if (directory / CONFIG_FILE).is_file():
        task, config = read_native_config(directory)
        model = _build_empty(task, config)
        state = load_state_dict(directory)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        mismatched = [f"{k} (checkpoint {tuple(state[k].shape)}, model {expected[k]})"
                      for k in expected if k in state and tuple(state[k].shape) != expected[k]]
        report = ConversionReport(sorted(set(expected) - set(state)), sorted(set(state) - set(expected)), mismatched)
    elif (directory / HF_CONFIG_FILE).is_file():
        hf_config = _read_hf_config(directory)
        _, arch = architecture_of(hf_config, str(directory / HF_CONFIG_FILE))
        config = arch.config_from_hf(hf_config)
        config.validate()
        model = _build_empty(arch.task, config)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        state, report = apply_rules(load_state_dict(directory), arch.key_rules(config), expected)
    else:
        raise CheckpointNotFoundError(f"{directory} holds neither {CONFIG_FILE} nor {HF_CONFIG_FILE}")
    if not report.ok:
        raise CheckpointMismatchError(report, str(directory))
    model.load_state_dict(state, strict=True, assign=True)
    _check_loaded(model, str(directory))
    model.to(device=device, dtype=dtype)
    return model.eval()
