"""perceiverkit: Perceiver IO for PyTorch — one architecture that reads and writes any modality.

A model is a preprocessor → encoder → decoder (queries) → postprocessor. Start with
:func:`from_pretrained` or :func:`create_model`, or assemble your own :class:`PerceiverIO`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The names below are imported on first use (PEP 562), so that `perceiverkit --help` and `--version` answer
# without importing torch. Whatever is asked for first also imports `checkpoints`, which installs the functions
# behind `save_pretrained` / `from_pretrained` on every task model.
_EXPORTS: dict[str, str] = {
    "ByteTokenizer": ".tokenizer",
    "CheckpointMismatchError": ".checkpoints",
    "CheckpointNotFoundError": ".checkpoints",
    "ClassificationDecoder": ".decoders",
    "ConfigError": ".config",
    "CrossAttentionDecoder": ".decoders",
    "DecoderConfig": ".config",
    "Encoded": ".model",
    "EncoderConfig": ".config",
    "FlowOutput": ".tasks",
    "ImageClassifier": ".tasks",
    "ImageClassifierConfig": ".tasks",
    "ImageProcessor": ".image_processing",
    "MaskedLanguageModel": ".tasks",
    "MaskedLanguageModelConfig": ".tasks",
    "MultimodalAutoencoder": ".tasks",
    "MultimodalAutoencoderConfig": ".tasks",
    "MultimodalDecoder": ".decoders",
    "OpticalFlow": ".tasks",
    "OpticalFlowConfig": ".tasks",
    "PRESETS": ".tasks",
    "PerceiverEncoder": ".encoder",
    "PerceiverIO": ".model",
    "PerceiverOutput": ".model",
    "PerceiverAR": ".tasks",
    "PerceiverARConfig": ".tasks",
    "PointCloudClassifier": ".tasks",
    "PointCloudClassifierConfig": ".tasks",
    "PositionEncodingConfig": ".config",
    "ProjectionDecoder": ".decoders",
    "SequenceClassifier": ".tasks",
    "SequenceClassifierConfig": ".tasks",
    "TaskModel": ".tasks",
    "WordHashTokenizer": ".word_tokenizer",
    "create_model": ".tasks",
    "from_pretrained": ".checkpoints",
    "pipeline": ".pipelines",
    "preset_config": ".tasks",
}

if TYPE_CHECKING:
    from .checkpoints import CheckpointMismatchError, CheckpointNotFoundError, from_pretrained
    from .config import ConfigError, DecoderConfig, EncoderConfig, PositionEncodingConfig
    from .decoders import ClassificationDecoder, CrossAttentionDecoder, MultimodalDecoder, ProjectionDecoder
    from .encoder import PerceiverEncoder
    from .image_processing import ImageProcessor
    from .model import Encoded, PerceiverIO, PerceiverOutput
    from .pipelines import pipeline
    from .tasks import (
        PRESETS,
        FlowOutput,
        ImageClassifier,
        ImageClassifierConfig,
        MaskedLanguageModel,
        MaskedLanguageModelConfig,
        MultimodalAutoencoder,
        MultimodalAutoencoderConfig,
        OpticalFlow,
        OpticalFlowConfig,
        PerceiverAR,
        PerceiverARConfig,
        PointCloudClassifier,
        PointCloudClassifierConfig,
        SequenceClassifier,
        SequenceClassifierConfig,
        TaskModel,
        create_model,
        preset_config,
    )
    from .tokenizer import ByteTokenizer
    from .word_tokenizer import WordHashTokenizer


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    importlib.import_module(".checkpoints", __name__)
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, "__version__"})  # the public names, loaded or not


__all__ = [
    "PRESETS",
    "ByteTokenizer",
    "CheckpointMismatchError",
    "CheckpointNotFoundError",
    "ClassificationDecoder",
    "ConfigError",
    "CrossAttentionDecoder",
    "DecoderConfig",
    "Encoded",
    "EncoderConfig",
    "FlowOutput",
    "ImageClassifier",
    "ImageClassifierConfig",
    "ImageProcessor",
    "MaskedLanguageModel",
    "MaskedLanguageModelConfig",
    "MultimodalAutoencoder",
    "MultimodalAutoencoderConfig",
    "MultimodalDecoder",
    "OpticalFlow",
    "OpticalFlowConfig",
    "PerceiverAR",
    "PerceiverARConfig",
    "PerceiverEncoder",
    "PerceiverIO",
    "PerceiverOutput",
    "PointCloudClassifier",
    "PointCloudClassifierConfig",
    "PositionEncodingConfig",
    "ProjectionDecoder",
    "SequenceClassifier",
    "SequenceClassifierConfig",
    "TaskModel",
    "WordHashTokenizer",
    "create_model",
    "from_pretrained",
    "pipeline",
    "preset_config",
]
