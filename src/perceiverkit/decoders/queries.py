"""Building decoder queries: position encodings of an output grid, and selecting output points."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..config import PositionEncodingConfig
from ..layers.position import FourierPositionEncoding, TrainablePositionEncoding, fraction_positions


class PositionQueries(nn.Module):
    """Queries from a position encoding of an ``index_dims`` grid, optionally linearly projected."""

    def __init__(self, config: PositionEncodingConfig, index_dims: Sequence[int]) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.index_dims = tuple(index_dims)
        self.encoding: TrainablePositionEncoding | FourierPositionEncoding
        if config.kind == "trainable":
            self.encoding = TrainablePositionEncoding(self.index_dims, config.num_channels)
        else:
            assert config.max_resolution is not None  # validated
            self.encoding = FourierPositionEncoding(
                config.num_bands, config.max_resolution, config.concat_pos, config.sine_only
            )
        width = config.encoding_channels(len(self.index_dims))
        self.projection = nn.Linear(width, config.project_pos_dim) if config.project_pos_dim else nn.Identity()

    @property
    def num_channels(self) -> int:
        return self.config.output_channels(len(self.index_dims))

    def forward(
        self,
        batch_size: int,
        points: Tensor | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """``(B, N, C)`` queries for the whole grid, or ``(B, Q, C)`` for its flat indices ``points``."""
        if isinstance(self.encoding, TrainablePositionEncoding):
            encoded = self.encoding(batch_size, points)
        elif self.config.grid == "fraction":
            if points is None:
                points = torch.arange(self.num_points, device=device)
            pos = fraction_positions(self.index_dims, points)
            pos = pos.expand(batch_size, -1, -1) if pos.dim() == 2 else pos
            encoded = self.encoding(batch_size, self.index_dims, pos=pos, dtype=dtype)
        else:
            encoded = self.encoding(batch_size, self.index_dims, points, device=device, dtype=dtype)
        return self.projection(encoded)

    @property
    def num_points(self) -> int:
        return math.prod(self.index_dims)


def check_points(points: Tensor | None, num_outputs: int) -> None:
    """Validate flat output indices before they are used to gather queries."""
    if points is None:
        return
    if points.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"output points must be an integer tensor of flat indices, got dtype {points.dtype}")
    if points.numel() and not torch.compiler.is_compiling():
        low, high = int(points.min()), int(points.max())
        if low < 0 or high >= num_outputs:
            raise ValueError(f"output points must lie in [0, {num_outputs}), got values in [{low}, {high}]")


def gather_points(array: Tensor, points: Tensor) -> Tensor:
    """Rows of ``array`` ``(B, N, C)`` at flat indices ``points`` ``(Q,)`` or ``(B, Q)``."""
    if points.dim() == 1:
        return array[:, points]
    return torch.gather(array, 1, points[..., None].expand(-1, -1, array.shape[-1]))
