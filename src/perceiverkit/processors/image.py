"""Images and video frames in: convolution, 1×1 convolution, patches or raw pixels, plus positions."""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from ..accel import FactoredInputs
from ..config import PositionEncodingConfig, _check, _check_choice, _check_positive
from ..layers.conv import ConvDownsample, ConvStem3x3
from ..layers.patches import space_to_depth
from .base import Preprocessed
from .positions import GridPositions

PrepType = Literal["conv", "conv3x3", "conv1x1", "patches", "pixels"]
PREP_TYPES: tuple[str, ...] = typing.get_args(PrepType)


@dataclass
class ImagePreprocessorConfig:
    """How pixels become input features.

    - ``conv``: 7×7/2 conv + batch norm + ReLU + 3×3/2 max-pool per factor 4 of ``spatial_downsample``.
    - ``conv3x3``: ``stem_layers`` × (3×3 conv + batch norm + ReLU) with 2×2 max-pools for ``spatial_downsample``
      (a power of 2) — a stem for small images.
    - ``conv1x1``: a 1×1 convolution with stride ``spatial_downsample``.
    - ``patches``: space-to-depth blocks of ``spatial_downsample`` pixels (and ``temporal_downsample`` frames),
      optionally followed by a linear layer to ``out_channels`` (``linear_after_patching``).
    - ``pixels``: every ``spatial_downsample``-th pixel (and ``temporal_downsample``-th frame), unchanged.

    ``position`` encodes the feature grid; ``position_grid`` is the grid that trainable positions are learned
    for. Positions are concatenated to the features, or added (``position_mode="add"``).
    """

    prep_type: PrepType = "conv"
    in_channels: int = 3
    out_channels: int = 64
    spatial_downsample: int = 4
    temporal_downsample: int = 1
    linear_after_patching: bool = False
    use_batchnorm: bool = True
    stem_layers: int = 2
    position: PositionEncodingConfig = field(
        default_factory=lambda: PositionEncodingConfig(kind="fourier", max_resolution=(224, 224))
    )
    position_grid: tuple[int, ...] | None = None
    position_mode: Literal["concat", "add"] = "concat"

    def validate(self) -> None:
        _check_choice("ImagePreprocessorConfig", "prep_type", self.prep_type, PREP_TYPES)
        _check_choice("ImagePreprocessorConfig", "position_mode", self.position_mode, ("concat", "add"))
        _check_positive("ImagePreprocessorConfig", in_channels=self.in_channels, out_channels=self.out_channels,
                        spatial_downsample=self.spatial_downsample, temporal_downsample=self.temporal_downsample)
        if self.prep_type == "conv":
            layers = math.log(self.spatial_downsample, 4)
            _check(layers == round(layers) and layers >= 1 and self.temporal_downsample == 1,
                   "ImagePreprocessorConfig: prep_type 'conv' downsamples by powers of 4 in space and not in time, "
                   f"got spatial_downsample={self.spatial_downsample}, temporal_downsample={self.temporal_downsample}")
        if self.prep_type == "conv3x3":
            pools = self.spatial_downsample.bit_length() - 1
            _check(2**pools == self.spatial_downsample and pools <= self.stem_layers and self.temporal_downsample == 1,
                   "ImagePreprocessorConfig: prep_type 'conv3x3' downsamples by a power of 2 up to 2**stem_layers in "
                   f"space and not in time, got spatial_downsample={self.spatial_downsample}, "
                   f"stem_layers={self.stem_layers}, temporal_downsample={self.temporal_downsample}")
        if self.prep_type == "conv1x1":
            _check(self.temporal_downsample == 1, "ImagePreprocessorConfig: conv1x1 does not downsample in time")
        _check(self.position.kind != "trainable" or self.position_grid is not None,
               "ImagePreprocessorConfig.position_grid is required for trainable positions")
        self.position.validate()

    def patch_channels(self, video: bool) -> int:
        """Channels of one space-to-depth block."""
        return self.in_channels * self.spatial_downsample**2 * (self.temporal_downsample if video else 1)

    def feature_channels(self, video: bool) -> int:
        """Channels per grid point before positions are attached."""
        projected = self.prep_type in ("conv", "conv3x3", "conv1x1")
        if projected or (self.prep_type == "patches" and self.linear_after_patching):
            return self.out_channels
        if self.prep_type == "pixels":
            return self.in_channels
        return self.patch_channels(video)


class ImagePreprocessor(nn.Module):
    """Images ``(B, C, H, W)`` or videos ``(B, T, C, H, W)`` → :class:`Preprocessed` features with positions.

    A video whose time axis is folded away entirely by patching (e.g. a frame pair with
    ``temporal_downsample=2``) is treated as one image.
    """

    def __init__(self, config: ImagePreprocessorConfig, video: bool = False) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.video = video
        self.conv: ConvDownsample | ConvStem3x3 | nn.Conv2d  # set only for the convolutional prep types
        if config.prep_type == "conv":
            self.conv = ConvDownsample(config.in_channels, config.out_channels,
                                       num_layers=round(math.log(config.spatial_downsample, 4)),
                                       use_batchnorm=config.use_batchnorm)
        elif config.prep_type == "conv3x3":
            self.conv = ConvStem3x3(config.in_channels, config.out_channels, config.stem_layers,
                                    config.spatial_downsample, config.use_batchnorm)
        elif config.prep_type == "conv1x1":
            self.conv = nn.Conv2d(config.in_channels, config.out_channels, 1, stride=config.spatial_downsample)
        elif config.prep_type == "patches" and config.linear_after_patching:
            self.linear = nn.Linear(config.patch_channels(video), config.out_channels)
        self.positions = GridPositions(config.position, config.feature_channels(video), config.position_grid,
                                       config.position_mode)

    @property
    def num_channels(self) -> int:
        return self.positions.num_channels

    def _check(self, images: Tensor) -> None:
        expected = "(B, T, C, H, W)" if self.video else "(B, C, H, W)"
        if not isinstance(images, Tensor):
            raise TypeError(f"images must be a torch.Tensor of shape {expected}, got {type(images).__name__}")
        if not images.dtype.is_floating_point:
            raise TypeError(f"images must be a floating-point tensor (normalised pixels), got dtype {images.dtype}")
        if images.dim() != (5 if self.video else 4):
            raise ValueError(f"images must have shape {expected}, got {tuple(images.shape)}")
        channels = images.shape[-3]
        if channels != self.config.in_channels:
            raise ValueError(f"images must have {self.config.in_channels} channels (axis -3 of {expected}), "
                             f"got shape {tuple(images.shape)}")
        if images.numel() == 0:
            raise ValueError(f"images must not be empty, got shape {tuple(images.shape)}")

    def features(self, images: Tensor) -> Tensor:
        """The channels-last feature grid ``(B, *grid, C)`` before positions."""
        self._check(images)
        cfg = self.config
        s, t = cfg.spatial_downsample, cfg.temporal_downsample
        if cfg.prep_type == "patches":
            x = self._patches(images)
            return self.linear(x) if cfg.linear_after_patching else x
        if cfg.prep_type == "pixels":
            x = images[:, ::t, :, ::s, ::s] if self.video else images[:, :, ::s, ::s]
            return x.movedim(-3, -1)
        frames = images.flatten(0, 1) if self.video else images  # per-frame convolution
        if cfg.prep_type == "conv1x1":
            # Channels-last in, channels-last out: the channels-last features below are then a view, not a copy
            # (and the 1×1 convolution itself runs faster on the CPU that way).
            frames = frames.contiguous(memory_format=torch.channels_last)
        x = self.conv(frames)  # (B·T | B, C, H, W)
        if self.video:
            x = x.reshape(*images.shape[:2], *x.shape[1:])
        return x.movedim(-3, -1)

    def _patches(self, images: Tensor) -> Tensor:
        """Space-to-depth blocks ``(B, [T,] *grid, C·s²[·t])``; a video folded to one frame becomes an image."""
        x = space_to_depth(images, self.config.spatial_downsample, self.config.temporal_downsample)
        return x.squeeze(1) if x.dim() == 5 and x.shape[1] == 1 else x

    def _raw_and_map(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor | None] | None:
        """When the features are a linear map of fewer raw channels (a 1×1 convolution, a linear layer after
        patching): the raw grid ``(B, *grid, Cr)`` and the map's ``(C, Cr)`` weight and bias."""
        cfg = self.config
        if cfg.prep_type == "conv1x1":
            s = cfg.spatial_downsample
            conv: nn.Conv2d = self.conv  # type: ignore[assignment]  # one module per prep_type
            return images[..., ::s, ::s].movedim(-3, -1), conv.weight.flatten(1), conv.bias
        if cfg.prep_type == "patches" and cfg.linear_after_patching:
            return self._patches(images), self.linear.weight, self.linear.bias
        return None

    def forward(self, images: Tensor, interpolate_pos_encoding: bool = False) -> Preprocessed:
        features = self.features(images)
        pre = self.positions(features, interpolate=interpolate_pos_encoding)
        linear_of = self._raw_and_map(images) if isinstance(pre.view, FactoredInputs) else None
        if isinstance(pre.view, FactoredInputs) and linear_of is not None:
            raw, weight, bias = linear_of
            if raw.shape[-1] < features.shape[-1]:  # the map only pays off when it widens
                flat = raw.reshape(raw.shape[0], -1, raw.shape[-1])  # (B, N, Cr)
                # The encoder can then attend to the raw channels instead (perceiverkit.accel.factored).
                pre = pre.with_view(FactoredInputs(flat, pre.view.positions, weight, bias))
        return pre
