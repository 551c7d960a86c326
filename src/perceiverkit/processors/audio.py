"""Audio in and out: patches of consecutive samples with 1-D positions; linear maps back to samples."""

from __future__ import annotations

from torch import Tensor, nn

from ..config import PositionEncodingConfig
from .base import Preprocessed
from .positions import GridPositions, PositionMode


class AudioPreprocessor(nn.Module):
    """Mono audio ``(B, S)`` or ``(B, S, 1)`` → ``(B, S / samples_per_patch, samples_per_patch + positions)``.

    ``num_patches`` is needed for trainable positions (the number of patches they are learned for).
    """

    def __init__(
        self,
        samples_per_patch: int,
        position: PositionEncodingConfig,
        num_patches: int | None = None,
        mode: PositionMode = "concat",
    ) -> None:
        super().__init__()
        if samples_per_patch < 1:
            raise ValueError(f"samples_per_patch must be positive, got {samples_per_patch}")
        self.samples_per_patch = samples_per_patch
        grid = (num_patches,) if num_patches is not None else None
        self.positions = GridPositions(position, samples_per_patch, grid, mode)

    @property
    def num_channels(self) -> int:
        return self.positions.num_channels

    def forward(self, audio: Tensor) -> Preprocessed:
        if not isinstance(audio, Tensor) or not audio.dtype.is_floating_point:
            raise TypeError("audio must be a floating-point torch.Tensor of samples, shape (batch, samples[, 1])")
        if audio.dim() == 3 and audio.shape[-1] == 1:
            audio = audio[..., 0]
        if audio.dim() != 2:
            raise ValueError(f"audio must be mono with shape (batch, samples) or (batch, samples, 1), "
                             f"got {tuple(audio.shape)}; mix multi-channel audio down first")
        batch, samples = audio.shape
        if samples == 0 or samples % self.samples_per_patch:
            raise ValueError(f"audio length {samples} must be a positive multiple of samples_per_patch "
                             f"({self.samples_per_patch})")
        return self.positions(audio.reshape(batch, samples // self.samples_per_patch, self.samples_per_patch))


class AudioPostprocessor(nn.Module):
    """Decoded patches ``(B, Q, C)`` → samples ``(B, Q · samples_per_patch)``."""

    def __init__(self, in_channels: int, samples_per_patch: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, samples_per_patch)

    def forward(self, decoded: Tensor) -> Tensor:
        return self.linear(decoded).flatten(1)
