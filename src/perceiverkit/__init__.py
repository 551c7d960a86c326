"""perceiverkit: Perceiver IO for PyTorch — one architecture that reads and writes any modality.

A model is a preprocessor → encoder → decoder (queries) → postprocessor. Start with
:func:`from_pretrained` or :func:`create_model`, or assemble your own :class:`PerceiverIO`.
"""

from .checkpoints import CheckpointMismatchError, CheckpointNotFoundError, from_pretrained
from .config import ConfigError, DecoderConfig, EncoderConfig, PositionEncodingConfig
from .decoders import ClassificationDecoder, CrossAttentionDecoder, MultimodalDecoder, ProjectionDecoder
from .encoder import PerceiverEncoder
from .model import Encoded, PerceiverIO, PerceiverOutput
from .image_processing import ImageProcessor
from .tasks import (
    PRESETS,
    FlowOutput,
    ImageClassifier,
    ImageClassifierConfig,
    MultimodalAutoencoder,
    MultimodalAutoencoderConfig,
    OpticalFlow,
    OpticalFlowConfig,
    MaskedLanguageModel,
    MaskedLanguageModelConfig,
    SequenceClassifier,
    SequenceClassifierConfig,
    TaskModel,
    create_model,
    preset_config,
)
from .tokenizer import ByteTokenizer
from .word_tokenizer import WordHashTokenizer

__version__ = "0.1.0"

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
    "OpticalFlow",
    "OpticalFlowConfig",
    "MaskedLanguageModel",
    "MultimodalDecoder",
    "MaskedLanguageModelConfig",
    "MultimodalAutoencoder",
    "MultimodalAutoencoderConfig",
    "PerceiverEncoder",
    "PerceiverIO",
    "PerceiverOutput",
    "PositionEncodingConfig",
    "ProjectionDecoder",
    "SequenceClassifier",
    "SequenceClassifierConfig",
    "TaskModel",
    "WordHashTokenizer",
    "create_model",
    "from_pretrained",
    "preset_config",
]
