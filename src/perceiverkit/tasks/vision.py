"""Image classification: the three published ImageNet classifiers differ only in their preprocessing."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from torch import Tensor

from ..config import EncoderConfig, _check, _check_positive
from ..encoder import PerceiverEncoder
from ..model import PerceiverIO, PerceiverOutput
from ..processors.image import ImagePreprocessor, ImagePreprocessorConfig
from .base import TaskModel
from .heads import PROBLEM_TYPES, ProblemType, classification_decoder, classification_loss


@cache
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in the standard index order."""
    text = resources.files("perceiverkit.resources").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    return tuple(text.splitlines())


@dataclass
class ImageClassifierConfig:
    """An image classifier: a preprocessor, the encoder and one learned decoder query."""

    image: ImagePreprocessorConfig = field(default_factory=ImagePreprocessorConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    num_labels: int = 1000
    problem_type: ProblemType | None = None
    labels: tuple[str, ...] | None = None

    def validate(self) -> None:
        self.image.validate()
        self.encoder.validate()
        _check_positive("ImageClassifierConfig", num_labels=self.num_labels)
        _check(self.problem_type is None or self.problem_type in PROBLEM_TYPES,
               f"ImageClassifierConfig.problem_type must be one of {list(PROBLEM_TYPES)} or None")
        _check(self.labels is None or len(self.labels) == self.num_labels,
               f"ImageClassifierConfig.labels names {len(self.labels or ())} classes, expected {self.num_labels}")


class ImageClassifier(TaskModel):
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
        if pixel_values is not None and inputs is not None:
            raise ValueError("pass either pixel_values or inputs (an alias), not both")
        images = pixel_values if pixel_values is not None else inputs
        if images is None:
            raise ValueError("pixel_values is required")
        kwargs = {"interpolate_pos_encoding": interpolate_pos_encoding}
        out = self.perceiver(images, None, None, output_attentions, output_hidden_states, **kwargs)
        if labels is not None:
            out.loss = classification_loss(out.logits, labels, self.config.num_labels, self.config.problem_type)
        return out
