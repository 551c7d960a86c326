"""Image classification: the three published ImageNet classifiers differ only in their preprocessing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from torch import Tensor

from ..config import ConfigError, EncoderConfig, PositionEncodingConfig
from ..encoder import PerceiverEncoder
from ..image_processing import PREPROCESSOR_CONFIG, ImageProcessor
from ..model import PerceiverIO, PerceiverOutput
from ..processors.image import ImagePreprocessor, ImagePreprocessorConfig
from . import transformers_keys as keys
from .base import TaskModel, pick_input
from .heads import ProblemType, check_labels, classification_decoder, classification_loss
from .registry import Preset, TaskSpec, TransformersArchitecture, register_task


@cache
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in the standard index order."""
    text = resources.files("perceiverkit.resources").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    return tuple(text.splitlines())


@dataclass
class ImageClassifierConfig:
    """An image classifier: a preprocessor, the encoder and one learned decoder query."""

    image: ImagePreprocessorConfig = field(default_factory=ImagePreprocessorConfig)
    # One cross-attention head, as in every published image classifier: the default preprocessor's 322 feature
    # channels (64 conv + 258 Fourier) are not divisible by EncoderConfig's default of 8 heads.
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(num_cross_attention_heads=1))
    num_labels: int = 1000
    problem_type: ProblemType | None = None
    labels: tuple[str, ...] | None = None

    def validate(self) -> None:
        self.image.validate()
        self.encoder.validate()
        check_labels("ImageClassifierConfig", self.num_labels, self.labels, self.problem_type)


def input_resolution(image: ImagePreprocessorConfig) -> tuple[int, int] | None:
    """The ``(height, width)`` of pixels the config's position grid is laid over, or None when it does not say
    (positions it resamples or a grid it does not fix)."""
    grid = image.position_grid if image.position.kind == "trainable" else image.position.max_resolution
    if grid is None or len(grid) != 2:
        return None
    return grid[0] * image.spatial_downsample, grid[1] * image.spatial_downsample


def default_image_processor(image: ImagePreprocessorConfig) -> ImageProcessor:
    """Preprocessing for a checkpoint saved without its own (older checkpoints, Transformers' ImageNet models):
    the ImageNet recipe for 3-channel models over 224×224 pixels (or a grid the config does not fix), else a
    plain bilinear resize to the model's resolution and scaling to [0, 1] (what image-folder training did)."""
    resolution = input_resolution(image)
    if image.in_channels == 3 and resolution in (None, (224, 224)):
        return ImageProcessor()
    return ImageProcessor.plain(resolution, num_channels=image.in_channels)


class ImageClassifier(TaskModel[ImageClassifierConfig]):
    """Classifies images ``(B, C, H, W)`` (normalised pixels, e.g. from :class:`ImageProcessor`)."""

    task = "image-classification"
    config_class = ImageClassifierConfig

    def __init__(self, config: ImageClassifierConfig) -> None:
        super().__init__(config)
        preprocessor = ImagePreprocessor(config.image)
        self.perceiver = PerceiverIO(
            encoder=PerceiverEncoder(config.encoder, input_channels=preprocessor.num_channels),
            decoder=classification_decoder(config.encoder, config.num_labels),
            preprocessor=preprocessor,
        )
        self.reset_parameters()

    @property
    def image_processor(self) -> ImageProcessor:
        """How images become this model's ``pixel_values``: the settings it was trained with (set by training,
        restored from ``preprocessor_config.json``), else :func:`default_image_processor` of its config."""
        return self.__dict__.get("_image_processor") or default_image_processor(self.config.image)

    @image_processor.setter
    def image_processor(self, processor: ImageProcessor) -> None:
        if not isinstance(processor, ImageProcessor):
            raise TypeError(f"image_processor must be an ImageProcessor, got {type(processor).__name__}")
        if processor.num_channels != self.config.image.in_channels:
            raise ValueError(f"the image processor gives {processor.num_channels} channels but the model reads "
                             f"{self.config.image.in_channels}")
        self.__dict__["_image_processor"] = processor

    def save_processor(self, directory: Path) -> dict[str, Any]:
        self.image_processor.save_pretrained(directory)
        return {}

    def load_processor(self, directory: Path, settings: dict[str, Any]) -> None:
        if (directory / PREPROCESSOR_CONFIG).is_file():
            self.image_processor = ImageProcessor.from_pretrained(directory)

    @property
    def label_names(self) -> tuple[str, ...]:
        """Class names: the config's, ImageNet's for 1000-class models, else ``LABEL_i``."""
        if self.config.labels:
            return self.config.labels
        if self.config.num_labels == 1000:
            return imagenet_class_names()
        return tuple(f"LABEL_{i}" for i in range(self.config.num_labels))

    def forward(
        self,
        pixel_values: Tensor | None = None,
        labels: Tensor | None = None,
        *,
        inputs: Tensor | None = None,
        interpolate_pos_encoding: bool = False,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> PerceiverOutput:
        """Logits ``(B, num_labels)``. ``interpolate_pos_encoding`` resamples learned positions to the input's
        resolution; with ``labels``, also the loss for the config's problem type."""
        images = pick_input(pixel_values, inputs, "pixel_values")
        kwargs = {"interpolate_pos_encoding": interpolate_pos_encoding}
        out = self.perceiver(images, None, None, output_attentions, output_hidden_states, **kwargs)
        if labels is not None:
            out.loss = classification_loss(out.logits, labels, self.config.num_labels, self.config.problem_type)
        return out


# --- presets and Transformers mappings --------------------------------------------------------------------------

def _fourier(num_bands: int, max_resolution: tuple[int, ...]) -> PositionEncodingConfig:
    return PositionEncodingConfig(kind="fourier", num_bands=num_bands, max_resolution=max_resolution)


#: The three published ImageNet preprocessors (what Transformers hard-codes in each classifier), by
#: (preset name, Transformers architecture). Only the learned positions depend on the image size.
IMAGENET_PREPROCESSORS: dict[tuple[str, str], Callable[[int], ImagePreprocessorConfig]] = {
    ("vision-perceiver-learned", "PerceiverForImageClassificationLearned"): lambda size: ImagePreprocessorConfig(
        prep_type="conv1x1", out_channels=256, spatial_downsample=1, position_grid=(size, size),
        position=PositionEncodingConfig(kind="trainable", num_channels=256, project_pos_dim=256)),
    ("vision-perceiver-fourier", "PerceiverForImageClassificationFourier"): lambda size: ImagePreprocessorConfig(
        prep_type="pixels", spatial_downsample=1, position=_fourier(64, (224, 224))),
    ("vision-perceiver-conv", "PerceiverForImageClassificationConvProcessing"): lambda size: ImagePreprocessorConfig(
        prep_type="conv", out_channels=64, spatial_downsample=4, position=_fourier(64, (56, 56))),
}

_DESCRIPTIONS = {
    "vision-perceiver-learned":
        "ImageNet classifier with learned 2-D positions over 224×224 pixels (1×1 conv features).",
    "vision-perceiver-fourier": "ImageNet classifier on raw pixels with 2-D Fourier positions.",
    "vision-perceiver-conv": "ImageNet classifier with a convolutional stem (4× downsampling) and Fourier positions.",
}


def _imagenet(image: ImagePreprocessorConfig) -> ImageClassifierConfig:
    # The three ImageNet models share the encoder: 512 × 1024 latents, 8 blocks of 6 shared self-attentions.
    return ImageClassifierConfig(image=image, num_labels=1000, encoder=EncoderConfig(
        num_latents=512, d_latents=1024, num_blocks=8, num_self_attends_per_block=6, num_self_attention_heads=8,
        num_cross_attention_heads=1))


def _preset(name: str, preprocessor: Callable[[int], ImagePreprocessorConfig]) -> Preset:
    return Preset(name=name, task=ImageClassifier.task, make_config=lambda: _imagenet(preprocessor(224)),
                  description=_DESCRIPTIONS[name], hub_id=f"deepmind/{name}")


def _architecture(name: str, preprocessor: Callable[[int], ImagePreprocessorConfig]
                  ) -> TransformersArchitecture[ImageClassifierConfig]:
    # Only learned positions depend on Transformers' image_size; the Fourier classifiers ignore it (any value loads).
    learned = preprocessor(1).position.kind == "trainable"

    def config_from_hf(hf: dict[str, Any]) -> ImageClassifierConfig:
        labels = keys.label_names(hf)
        size = keys.image_size(hf) if learned else 224
        return ImageClassifierConfig(image=preprocessor(size), encoder=keys.encoder_config(hf),
                                     num_labels=keys.num_labels(hf, labels), problem_type=hf.get("problem_type"),
                                     labels=labels)

    def config_to_hf(config: ImageClassifierConfig) -> dict[str, Any]:
        grid = config.image.position_grid
        size = grid[0] if learned and grid else 224
        keys.require_same("ImageClassifierConfig.image", config.image, preprocessor(size), name)
        fields = {"image_size": size} if learned else {}
        return keys.hf_config(name, **fields, **keys.encoder_to_hf(config.encoder),
                              **keys.labels_to_hf(config.num_labels, config.labels, config.problem_type))

    def key_rules(config: ImageClassifierConfig) -> list[keys.KeyRule]:
        return [
            *keys.image_preprocessor("perceiver.preprocessor", "perceiver.input_preprocessor", config.image),
            *keys.encoder("perceiver.encoder", "perceiver", config.encoder.num_self_attends_per_block),
            *keys.decoder("perceiver.decoder", "perceiver.decoder.decoder"),
        ]

    return TransformersArchitecture(name, config_from_hf, key_rules, config_to_hf)


def _architecture_of(config: ImageClassifierConfig) -> str:
    """Transformers' three classifiers differ in their preprocessor, told apart by its kind."""
    by_prep_type = {make(224).prep_type: arch for (_, arch), make in IMAGENET_PREPROCESSORS.items()}
    prep_type = config.image.prep_type
    if prep_type not in by_prep_type:
        raise ConfigError(f"ImageClassifierConfig.image.prep_type is {prep_type!r}, but Transformers' image "
                          f"classifiers take only {sorted(by_prep_type)} ({', '.join(by_prep_type.values())}); "
                          "this model cannot be saved in Transformers' format")
    return by_prep_type[prep_type]


register_task(TaskSpec(
    name=ImageClassifier.task,
    model_class=ImageClassifier,
    presets=tuple(_preset(preset, make) for (preset, _), make in IMAGENET_PREPROCESSORS.items()),
    transformers=tuple(_architecture(arch, make) for (_, arch), make in IMAGENET_PREPROCESSORS.items()),
    lightning_module="perceiverkit.train.modules:ClassificationModule",
    data_sources={"fashion-mnist": "perceiverkit.train.datamodules:FashionMNISTData",
                  "digits": "perceiverkit.train.datamodules:DigitsData",
                  "image-folder": "perceiverkit.train.datamodules:ImageFolderData",
                  "hf-dataset": "perceiverkit.train.datamodules:HFImageClassificationData"},
    pipeline="perceiverkit.pipelines.image_classification:ImageClassification",
    pipeline_tag="image-classification",
    transformers_architecture_of=_architecture_of,
))
