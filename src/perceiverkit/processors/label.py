"""Class labels in and out: a one-hot (or soft) label vector is one input; one decoded vector gives logits."""

from __future__ import annotations

from torch import Tensor, nn

from .base import Preprocessed


class OneHotPreprocessor(nn.Module):
    """Label vectors ``(B, num_labels)`` → one input element ``(B, 1, num_labels)``."""

    def __init__(self, num_labels: int) -> None:
        super().__init__()
        self.num_labels = num_labels

    @property
    def num_channels(self) -> int:
        return self.num_labels

    def forward(self, labels: Tensor) -> Preprocessed:
        if not isinstance(labels, Tensor) or not labels.dtype.is_floating_point:
            raise TypeError(f"labels must be a floating-point (one-hot) tensor of shape (batch, {self.num_labels})")
        if labels.dim() != 2 or labels.shape[1] != self.num_labels:
            raise ValueError(f"labels must have shape (batch, {self.num_labels}), got {tuple(labels.shape)}")
        x = labels[:, None, :]
        return Preprocessed(inputs=x, index_dims=(1,), inputs_without_pos=x)


class ClassificationPostprocessor(nn.Module):
    """The first decoded vector ``(B, Q, C)`` → logits ``(B, num_labels)``."""

    def __init__(self, in_channels: int, num_labels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, num_labels)

    def forward(self, decoded: Tensor) -> Tensor:
        return self.linear(decoded[:, 0])


class ProjectionPostprocessor(nn.Module):
    """A linear map of every decoded vector, e.g. to RGB values: ``(B, Q, C)`` → ``(B, Q, out_channels)``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, out_channels)

    def forward(self, decoded: Tensor) -> Tensor:
        return self.linear(decoded)
