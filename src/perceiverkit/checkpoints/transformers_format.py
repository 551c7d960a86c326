"""Transformers' Perceiver checkpoints: which task a ``config.json`` names, and reading that file.

Each task declares its own Transformers mapping (config converter and key table) next to its model; this
module only picks the mapping through the task registry and knows no task by name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..tasks.registry import TaskSpec, TransformersArchitecture, architectures, task_for_architecture

HF_CONFIG_FILE = "config.json"


def read_hf_config(directory: Path) -> dict[str, Any]:
    """The JSON object in ``directory/config.json``."""
    where = directory / HF_CONFIG_FILE
    try:
        data = json.loads(where.read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"{where} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must hold a JSON object")
    return data


def architecture_of(hf: dict[str, Any], where: str) -> tuple[TaskSpec[Any], TransformersArchitecture[Any]]:
    """The task and mapping of the architecture a Transformers config dict names, with a clear error when
    unsupported."""
    if hf.get("model_type") not in (None, "perceiver"):
        raise ConfigError(f"{where}: model_type is {hf.get('model_type')!r}, expected 'perceiver'")
    names = hf.get("architectures") or []
    if not names:
        raise ConfigError(f"{where}: config.json names no architecture; expected one of {architectures()}")
    try:
        return task_for_architecture(names[0])
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
