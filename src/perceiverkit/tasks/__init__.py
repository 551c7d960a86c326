"""Task models with dataclass configs, and presets for the official checkpoints."""

from .base import TASKS, TaskModel
from .flow import FlowOutput, OpticalFlow, OpticalFlowConfig
from .heads import classification_decoder, classification_loss
from .multimodal import (
    AutoencoderLossWeights,
    MultimodalAutoencoder,
    MultimodalAutoencoderConfig,
    autoencoding_targets,
)
from .point_cloud import PointCloudClassifier, PointCloudClassifierConfig, PointCloudPreprocessor
from .presets import PRESETS, Preset, create_model, preset_config, register_preset
from .text import (
    MaskedLanguageModel,
    MaskedLanguageModelConfig,
    SequenceClassifier,
    SequenceClassifierConfig,
    TextConfig,
)
from .vision import ImageClassifier, ImageClassifierConfig, imagenet_class_names

__all__ = [
    "AutoencoderLossWeights",
    "MultimodalAutoencoder",
    "MultimodalAutoencoderConfig",
    "autoencoding_targets",
    "FlowOutput",
    "ImageClassifier",
    "ImageClassifierConfig",
    "OpticalFlow",
    "OpticalFlowConfig",
    "PRESETS",
    "PointCloudClassifier",
    "PointCloudClassifierConfig",
    "PointCloudPreprocessor",
    "TASKS",
    "MaskedLanguageModel",
    "MaskedLanguageModelConfig",
    "Preset",
    "SequenceClassifier",
    "SequenceClassifierConfig",
    "TaskModel",
    "TextConfig",
    "classification_decoder",
    "classification_loss",
    "imagenet_class_names",
    "create_model",
    "preset_config",
    "register_preset",
]
