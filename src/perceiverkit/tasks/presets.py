"""Named configurations of the official checkpoints, and the one factory that builds any of them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import TASKS, TaskModel
from ..config import EncoderConfig
from .text import MaskedLanguageModelConfig


@dataclass(frozen=True)
class Preset:
    """A named model: which task, with which configuration, matching which published checkpoint."""

    name: str
    task: str
    make_config: Callable[[], Any]
    description: str
    hub_id: str | None = None


PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> Preset:
    """Add a preset; names are unique."""
    if preset.name in PRESETS:
        raise ValueError(f"preset {preset.name!r} already exists")
    PRESETS[preset.name] = preset
    return preset


def _language_perceiver() -> MaskedLanguageModelConfig:
    # The published model narrows queries/keys to 256 channels and widens values to the latent width.
    return MaskedLanguageModelConfig(encoder=EncoderConfig(qk_channels=256, v_channels=1280))


register_preset(Preset(
    name="language-perceiver",
    task="masked-lm",
    make_config=_language_perceiver,
    description="Byte-level masked language model (201M parameters), trained on English Wikipedia and C4.",
    hub_id="deepmind/language-perceiver",
))


def preset_config(name: str) -> Any:
    """A fresh copy of the preset's configuration, to modify before building a model."""
    try:
        return PRESETS[name].make_config()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; available: {sorted(PRESETS)}") from None


def create_model(name: str, **overrides: Any) -> TaskModel:
    """Build a randomly initialised model from a preset name, overriding top-level config fields.

    Example: ``create_model("language-perceiver", max_position_embeddings=512)``.
    """
    config = preset_config(name)
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"{type(config).__name__} has no field(s) {unknown}; fields are {sorted(fields)}")
    config = dataclasses.replace(config, **overrides)
    return TASKS[PRESETS[name].task](config)
