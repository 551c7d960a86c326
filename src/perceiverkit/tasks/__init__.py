"""Task models with dataclass configs, and presets for the official checkpoints."""

from .base import TASKS, TaskModel
from .presets import PRESETS, Preset, create_model, preset_config, register_preset
from .text import (
    MaskedLanguageModel,
    MaskedLanguageModelConfig,
    SequenceClassifier,
    SequenceClassifierConfig,
    TextConfig,
    classification_loss,
)

__all__ = [
    "PRESETS",
    "TASKS",
    "MaskedLanguageModel",
    "MaskedLanguageModelConfig",
    "Preset",
    "SequenceClassifier",
    "SequenceClassifierConfig",
    "TaskModel",
    "TextConfig",
    "classification_loss",
    "create_model",
    "preset_config",
    "register_preset",
]
