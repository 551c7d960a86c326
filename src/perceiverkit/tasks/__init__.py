"""Task models: one module per task (config, model, presets, Transformers mapping), all registered in
:mod:`perceiverkit.tasks.registry`."""

from .base import TaskModel
from .causal_lm import PerceiverAR, PerceiverARConfig
from .flow import FlowOutput, OpticalFlow, OpticalFlowConfig
from .heads import classification_decoder, classification_loss
from .multimodal import (
    AutoencoderLossWeights,
    MultimodalAutoencoder,
    MultimodalAutoencoderConfig,
    autoencoding_targets,
)
from .point_cloud import PointCloudClassifier, PointCloudClassifierConfig, PointCloudPreprocessor
from .registry import (
    PRESETS,
    TASKS,
    Preset,
    TaskSpec,
    TransformersArchitecture,
    create_model,
    get_task,
    preset_config,
    register_preset,
    register_task,
    task_for_architecture,
    task_names,
)
from .text import (
    MaskedLanguageModel,
    MaskedLanguageModelConfig,
    SequenceClassifier,
    SequenceClassifierConfig,
    TextConfig,
)
from .vision import ImageClassifier, ImageClassifierConfig, imagenet_class_names

__all__ = [
    "PRESETS",
    "TASKS",
    "AutoencoderLossWeights",
    "FlowOutput",
    "ImageClassifier",
    "ImageClassifierConfig",
    "MaskedLanguageModel",
    "MaskedLanguageModelConfig",
    "MultimodalAutoencoder",
    "MultimodalAutoencoderConfig",
    "OpticalFlow",
    "OpticalFlowConfig",
    "PerceiverAR",
    "PerceiverARConfig",
    "PointCloudClassifier",
    "PointCloudClassifierConfig",
    "PointCloudPreprocessor",
    "Preset",
    "SequenceClassifier",
    "SequenceClassifierConfig",
    "TaskModel",
    "TaskSpec",
    "TextConfig",
    "TransformersArchitecture",
    "autoencoding_targets",
    "classification_decoder",
    "classification_loss",
    "create_model",
    "get_task",
    "imagenet_class_names",
    "preset_config",
    "register_preset",
    "register_task",
    "task_for_architecture",
    "task_names",
]
