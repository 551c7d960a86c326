"""Attaching position encodings to a grid of input features (concatenated or added, optionally projected)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..accel import FactoredInputs, fast_paths_enabled
from ..config import PositionEncodingConfig
from ..layers.position import FourierPositionEncoding, TrainablePositionEncoding
from .base import Preprocessed

PositionMode = Literal["concat", "add"]


class GridPositions(nn.Module):
    """Flattens ``(B, *grid, C)`` features to ``(B, N, C')`` with a position encoding of the grid.

    Trainable encodings are learned for ``index_dims``; a different 2-D grid is accepted with
    ``interpolate=True`` (bicubic resampling of the learned grid). Fourier encodings fit any grid.
    """

    def __init__(
        self,
        config: PositionEncodingConfig,
        feature_channels: int,
        index_dims: Sequence[int] | None = None,
        mode: PositionMode = "concat",
    ) -> None:
        super().__init__()
        config.validate()
        if mode not in ("concat", "add"):
            raise ValueError(f"position mode must be 'concat' or 'add', got {mode!r}")
        self.config = config
        self.mode = mode
        self.feature_channels = feature_channels
        self.encoding: TrainablePositionEncoding | FourierPositionEncoding
        if config.kind == "trainable":
            if index_dims is None:
                raise ValueError("trainable position encodings need the grid size (index_dims)")
            self.encoding = TrainablePositionEncoding(index_dims, config.num_channels)
            num_dims = len(index_dims)
        else:
            assert config.max_resolution is not None
            self.encoding = FourierPositionEncoding(config.num_bands, config.max_resolution, config.concat_pos,
                                                    config.sine_only)
            num_dims = len(config.max_resolution)
        width = config.encoding_channels(num_dims)
        self.projection = nn.Linear(width, config.project_pos_dim) if config.project_pos_dim else nn.Identity()
        self.position_channels = config.output_channels(num_dims)
        if mode == "add" and self.position_channels != feature_channels:
            raise ValueError(
                f"adding {self.position_channels}-channel positions to {feature_channels}-channel features"
            )
        # The last (key, positions) computed without autograd; see positions().
        self._cache: tuple[tuple[object, ...], Tensor] | None = None

    @property
    def num_channels(self) -> int:
        return self.feature_channels if self.mode == "add" else self.feature_channels + self.position_channels

    def positions(self, batch_size: int, grid: Sequence[int], interpolate: bool, like: Tensor) -> Tensor:
        """``(batch_size, N, C)`` positions of the grid: computed once and expanded (one copy in memory).

        Without autograd (inference) the result is kept and reused while the grid, dtype, device and parameters
        are unchanged: Fourier features, learned tables and their projection depend on nothing else, and at
        ImageNet resolution recomputing them is a large share of the preprocessing (docs/benchmarks.md).
        :meth:`clear_cache` frees it.
        """
        key = self._cache_key(grid, interpolate, like)
        if key is not None and self._cache is not None and self._cache[0] == key:
            return self._cache[1].expand(batch_size, -1, -1)
        pos = self._compute(grid, interpolate, like)
        if key is not None:
            self._cache = (key, pos)
        return pos.expand(batch_size, -1, -1)

    def clear_cache(self) -> None:
        """Drop the positions kept from the last call without autograd."""
        self._cache = None

    def _cache_key(self, grid: Sequence[int], interpolate: bool, like: Tensor) -> tuple[object, ...] | None:
        # Only without autograd (a kept table would carry a stale graph) and outside torch.compile (which traces
        # the computation and reuses nothing from Python). A parameter's version counter changes with every
        # in-place update (optimiser steps, load_state_dict) and its data pointer with every replacement.
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            return None
        params = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in self.parameters())
        device = like.device.type
        autocast = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
        return tuple(grid), interpolate, like.dtype, like.device, autocast, params

    def _compute(self, grid: Sequence[int], interpolate: bool, like: Tensor) -> Tensor:
        """``(1, N, C)`` positions of the grid."""
        if isinstance(self.encoding, TrainablePositionEncoding):
            learned = tuple(self.encoding.index_dims)
            table: Tensor = self.encoding.embeddings  # a Parameter, replaced below by a resampled plain tensor
            if tuple(grid) != learned:
                if not interpolate or len(grid) != 2 or len(learned) != 2:
                    raise ValueError(
                        f"learned positions are for a {'×'.join(map(str, learned))} grid but the input gives "
                        f"{'×'.join(map(str, grid))}; pass interpolate_pos_encoding=True to resample them"
                    )
                table = _resample(table, learned, tuple(grid))
            pos = table.unsqueeze(0)
        else:
            pos = self.encoding(1, grid, device=like.device, dtype=like.dtype)
        return self.projection(pos.to(like.dtype))

    def forward(self, features: Tensor, interpolate: bool = False) -> Preprocessed:
        batch, *grid, channels = features.shape
        flat = features.reshape(batch, math.prod(grid), channels)
        pos = self.positions(batch, grid, interpolate, flat)
        if self.mode == "add":
            return Preprocessed(inputs=flat + pos, index_dims=tuple(grid), inputs_without_pos=flat)
        if not fast_paths_enabled():  # the reference: [features, positions] as one (B, N, C + P) array
            inputs = torch.cat([flat, pos.expand(batch, -1, -1)], dim=-1)
            return Preprocessed(inputs=inputs, index_dims=tuple(grid), inputs_without_pos=flat)
        # Positions are the same for every example: keep one copy, in a factored view of [flat, pos] that the
        # encoder can attend to without concatenating (perceiverkit.accel.factored); the concatenation is formed
        # only if something reads `inputs`.
        return Preprocessed.from_view(FactoredInputs(flat, pos[:1]), tuple(grid), inputs_without_pos=flat)


def _resample(table: Tensor, source: tuple[int, ...], target: tuple[int, ...]) -> Tensor:
    """Bicubically resample a flat ``(H·W, C)`` table of learned positions to another grid."""
    h, w = source
    grid = table.reshape(1, h, w, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=target, mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(target[0] * target[1], -1)
