"""Our own checkpoint format: ``model.safetensors`` + ``perceiverkit.json`` (task name and config dataclass)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from ..config import ConfigError, config_from_dict, config_to_dict
from ..tasks.base import TaskModel
from ..tasks.registry import get_task
from .files import SAFETENSORS, temporary_names

CONFIG_FILE = "perceiverkit.json"
FORMAT_VERSION = 1


def save_model(model: TaskModel, directory: str | os.PathLike[str]) -> Path:
    """Save ``model``'s weights and config into ``directory`` (created if needed); returns the directory."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().contiguous().cpu() for name, t in model.state_dict().items()}
    with temporary_names(path / SAFETENSORS, path / CONFIG_FILE) as (tmp_weights, tmp_config):
        save_file(tensors, tmp_weights, metadata={"format": "pt", "task": model.task})
        meta = {"format_version": FORMAT_VERSION, "task": model.task, "config": config_to_dict(model.config)}
        processor = model.save_processor(path)  # writes e.g. preprocessor_config.json; returns settings to keep
        if processor:
            meta["processor"] = processor
        tmp_config.write_text(json.dumps(meta, indent=2) + "\n")
    return path


def read_processor_settings(directory: Path) -> dict[str, Any]:
    """The processor settings ``perceiverkit.json`` keeps (a text model's tokenizer); empty when it keeps none."""
    settings = json.loads((directory / CONFIG_FILE).read_text()).get("processor", {})
    if not isinstance(settings, dict):
        raise ConfigError(f"{directory / CONFIG_FILE}: 'processor' must be an object, got {settings!r}")
    return settings


def read_native_config(directory: Path) -> tuple[str, Any]:
    """The task name and validated config dataclass stored in ``directory``."""
    where = str(directory / CONFIG_FILE)
    try:
        meta = json.loads((directory / CONFIG_FILE).read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"{where} is not valid JSON: {error}") from None
    if not isinstance(meta, dict) or not {"task", "config"} <= set(meta):
        raise ConfigError(f"{where} must hold an object with 'task' and 'config'")
    if meta.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise ConfigError(f"{where} was written by a newer perceiverkit (format {meta['format_version']})")
    try:
        spec = get_task(meta["task"])
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    return spec.name, config_from_dict(spec.config_class, meta["config"], where=f"{where}: config")
