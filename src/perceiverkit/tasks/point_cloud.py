"""Point-cloud classification: a worked example of building a Perceiver IO model for a new modality.

A point cloud is an unordered set of xyz points, with no grid: exactly what Perceiver IO handles natively,
since cross-attention does not care about input order. Building the model takes three pieces:

1. a *preprocessor* turning each point into a feature vector — here the point's own coordinates and their
   Fourier features (:func:`~perceiverkit.layers.fourier_features` accepts any positions, not only grids);
2. the generic :class:`~perceiverkit.PerceiverEncoder`;
3. a decoder — one learned query for the class logits (:func:`~perceiverkit.tasks.classification_decoder`).

:class:`~perceiverkit.PerceiverIO` wires them together; the task model only adds the loss. One
:func:`~perceiverkit.tasks.registry.register_task` call at the end makes the task known to ``from_pretrained``,
``perceiverkit train point-cloud`` (its Lightning module and data source are named there) and the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from torch import Tensor, nn

from ..config import EncoderConfig, _check_positive
from ..encoder import PerceiverEncoder
from ..layers.position import fourier_channels, fourier_features
from ..model import PerceiverIO, PerceiverOutput
from ..processors.base import Preprocessed
from .base import TaskModel
from .heads import check_labels, classification_decoder, classification_loss
from .registry import TaskSpec, register_task


class PointCloudPreprocessor(nn.Module):
    """``(B, N, 3)`` points → ``(B, N, C)`` features: normalised xyz plus their Fourier features.

    Each cloud is centred on its mean and scaled so its farthest point lies at distance 1, which removes
    translation and scale before the model sees the shape.
    """

    def __init__(self, num_bands: int, max_resolution: int) -> None:
        super().__init__()
        self.num_bands = num_bands
        self.max_resolution = max_resolution

    @property
    def num_channels(self) -> int:
        return fourier_channels(3, self.num_bands)

    def forward(self, points: Tensor) -> Preprocessed:
        if not isinstance(points, Tensor) or not points.dtype.is_floating_point:
            raise TypeError("points must be a floating-point tensor of shape (batch, num_points, 3)")
        if points.dim() != 3 or points.shape[-1] != 3 or points.shape[1] == 0:
            raise ValueError(f"points must have shape (batch, num_points ≥ 1, 3), got {tuple(points.shape)}")
        centred = points - points.mean(dim=1, keepdim=True)
        scale = centred.norm(dim=-1).amax(dim=1).clamp(min=1e-6)[:, None, None]
        normalised = centred / scale
        features = fourier_features(normalised, self.num_bands, (self.max_resolution,) * 3).to(points.dtype)
        return Preprocessed(inputs=features, index_dims=(points.shape[1],), inputs_without_pos=normalised)


@dataclass
class PointCloudClassifierConfig:
    """A point-cloud classifier: Fourier features of the points, the encoder and one learned decoder query."""

    renamed_fields: ClassVar[dict[str, str]] = {"num_classes": "num_labels"}  # checkpoints saved before the rename

    num_labels: int = 8
    num_bands: int = 16
    max_resolution: int = 32
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(
        num_latents=32, d_latents=128, num_self_attends_per_block=4, num_self_attention_heads=4,
        num_cross_attention_heads=1, attention_dropout=0.0))
    labels: tuple[str, ...] | None = None

    def validate(self) -> None:
        _check_positive("PointCloudClassifierConfig", num_bands=self.num_bands, max_resolution=self.max_resolution)
        check_labels("PointCloudClassifierConfig", self.num_labels, self.labels)
        self.encoder.validate()


class PointCloudClassifier(TaskModel[PointCloudClassifierConfig]):
    """Classifies point clouds ``(B, N, 3)``; the result does not depend on the order of the points."""

    task = "point-cloud-classification"
    config_class = PointCloudClassifierConfig

    def __init__(self, config: PointCloudClassifierConfig) -> None:
        super().__init__(config)
        preprocessor = PointCloudPreprocessor(config.num_bands, config.max_resolution)
        self.perceiver = PerceiverIO(
            encoder=PerceiverEncoder(config.encoder, input_channels=preprocessor.num_channels),
            decoder=classification_decoder(config.encoder, config.num_labels),
            preprocessor=preprocessor,
        )
        self.reset_parameters()

    def forward(self, points: Tensor, labels: Tensor | None = None, *,
                output_attentions: bool = False) -> PerceiverOutput:
        out = self.perceiver(points, output_attentions=output_attentions)
        if labels is not None:
            out.loss = classification_loss(out.logits, labels, self.config.num_labels, "single_label_classification")
        return out


register_task(TaskSpec(
    name=PointCloudClassifier.task,
    model_class=PointCloudClassifier,
    aliases=("point-cloud",),
    lightning_module="perceiverkit.train.modules:ClassificationModule",
    data_sources={"point-clouds": "perceiverkit.train.datamodules:PointCloudData"},
))

__all__ = ["PointCloudClassifier", "PointCloudClassifierConfig", "PointCloudPreprocessor"]
