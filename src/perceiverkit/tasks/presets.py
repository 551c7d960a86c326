"""Named configurations of the official checkpoints, and the one factory that builds any of them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import TASKS, TaskModel
from ..config import EncoderConfig, PositionEncodingConfig
from ..processors.image import ImagePreprocessorConfig
from .flow import OpticalFlowConfig
from .multimodal import MultimodalAutoencoderConfig
from .text import MaskedLanguageModelConfig
from .vision import ImageClassifierConfig


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


def _imagenet(image: ImagePreprocessorConfig) -> ImageClassifierConfig:
    # The three ImageNet models share the encoder: 512 × 1024 latents, 8 blocks of 6 shared self-attentions.
    return ImageClassifierConfig(image=image, num_labels=1000, encoder=EncoderConfig(
        num_latents=512, d_latents=1024, num_blocks=8, num_self_attends_per_block=6, num_self_attention_heads=8,
        num_cross_attention_heads=1))


register_preset(Preset(
    name="vision-perceiver-learned",
    task="image-classification",
    make_config=lambda: _imagenet(ImagePreprocessorConfig(
        prep_type="conv1x1", out_channels=256, spatial_downsample=1, position_grid=(224, 224),
        position=PositionEncodingConfig(kind="trainable", num_channels=256, project_pos_dim=256))),
    description="ImageNet classifier with learned 2-D positions over 224×224 pixels (1×1 conv features).",
    hub_id="deepmind/vision-perceiver-learned",
))

register_preset(Preset(
    name="vision-perceiver-fourier",
    task="image-classification",
    make_config=lambda: _imagenet(ImagePreprocessorConfig(
        prep_type="pixels", spatial_downsample=1,
        position=PositionEncodingConfig(kind="fourier", num_bands=64, max_resolution=(224, 224)))),
    description="ImageNet classifier on raw pixels with 2-D Fourier positions.",
    hub_id="deepmind/vision-perceiver-fourier",
))

register_preset(Preset(
    name="vision-perceiver-conv",
    task="image-classification",
    make_config=lambda: _imagenet(ImagePreprocessorConfig(
        prep_type="conv", out_channels=64, spatial_downsample=4,
        position=PositionEncodingConfig(kind="fourier", num_bands=64, max_resolution=(56, 56)))),
    description="ImageNet classifier with a convolutional stem (4× downsampling) and Fourier positions.",
    hub_id="deepmind/vision-perceiver-conv",
))

register_preset(Preset(
    name="optical-flow-perceiver",
    task="optical-flow",
    make_config=OpticalFlowConfig,
    description="Optical flow from 3×3 patches of two frames, trained on AutoFlow at 368×496.",
    hub_id="deepmind/optical-flow-perceiver",
))


register_preset(Preset(
    name="multimodal-perceiver",
    task="multimodal-autoencoding",
    make_config=MultimodalAutoencoderConfig,
    description="Video + audio + label autoencoder trained on Kinetics-700 (16 frames of 224×224, 48 kHz audio).",
    hub_id="deepmind/multimodal-perceiver",
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
