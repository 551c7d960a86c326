"""Position encodings: learned per-index vectors, and Fourier features of coordinates in [-1, 1].

Fourier features follow the Perceiver paper: for each spatial dimension ``d`` and band ``k`` with frequency
``f_k`` spaced linearly from 1 to ``max_resolution[d] / 2``, the features are ``sin(π f_k x_d)`` and
``cos(π f_k x_d)``, optionally preceded by the raw coordinates. Channel order is
``[x_1..x_D, sin(dim 1, bands 1..K), ..., sin(dim D, ...), cos(dim 1, ...), ..., cos(dim D, ...)]``.

Rotary position embeddings (Su et al., 2021) rotate query and key channels instead of adding a vector to the
inputs: pair ``i`` of a ``D``-wide head at position ``m`` turns by the angle ``m·θ_i``, ``θ_i = base^(-2i/D)``, so
``q_m · k_n`` depends on ``m − n`` only and the position table has no length limit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def linear_positions(index_dims: Sequence[int], device: torch.device | None = None) -> Tensor:
    """Coordinates of every point of an N-D grid, each axis spanning [-1, 1]: shape ``(*index_dims, N)``."""
    axes = [torch.linspace(-1.0, 1.0, steps=n, dtype=torch.float32, device=device) for n in index_dims]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def fraction_positions(index_dims: Sequence[int], points: Tensor) -> Tensor:
    """Coordinates ``-1 + 2·i/n`` (not ``linspace``'s ``i/(n-1)``) of flat grid indices ``points`` ``(..., )``:
    shape ``(..., len(index_dims))``. The published multimodal autoencoder's decoder queries use this grid."""
    coords = torch.stack(torch.unravel_index(points, tuple(index_dims)), dim=-1).float()
    return -1 + 2 * coords / torch.tensor(index_dims, dtype=torch.float32, device=points.device)


def fourier_features(
    pos: Tensor, num_bands: int, max_resolution: Sequence[int], concat_pos: bool = True, sine_only: bool = False
) -> Tensor:
    """Fourier features of positions ``pos`` ``(..., D)`` with coordinates in [-1, 1]; returns ``(..., C)``."""
    freqs = torch.stack(
        [torch.linspace(1.0, res / 2, steps=num_bands, device=pos.device) for res in max_resolution]
    )  # (D, K)
    scaled = (pos.float()[..., :, None] * freqs).flatten(-2) * math.pi  # (..., D*K), dimension-major
    features = [torch.sin(scaled)] if sine_only else [torch.sin(scaled), torch.cos(scaled)]
    if concat_pos:
        features.insert(0, pos.float())
    return torch.cat(features, dim=-1)


def fourier_channels(num_dims: int, num_bands: int, concat_pos: bool = True, sine_only: bool = False) -> int:
    """Width of :func:`fourier_features` for ``num_dims``-dimensional positions."""
    return num_dims * num_bands * (1 if sine_only else 2) + (num_dims if concat_pos else 0)


def _select(table: Tensor, batch_size: int, points: Tensor | None) -> Tensor:
    """Rows of ``table`` ``(N, C)`` for every batch element: all of them, or those at flat indices ``points``."""
    if points is None:
        return table.expand(batch_size, -1, -1)
    if points.dim() == 1:
        return table[points].expand(batch_size, -1, -1)
    if points.dim() == 2 and points.shape[0] == batch_size:
        return table[points]
    raise ValueError(
        f"output points must have shape (num_points,) or ({batch_size}, num_points), got {tuple(points.shape)}"
    )


class TrainablePositionEncoding(nn.Module):
    """One learned ``num_channels``-vector per index of an ``index_dims`` grid."""

    def __init__(self, index_dims: Sequence[int], num_channels: int) -> None:
        super().__init__()
        self.index_dims = tuple(index_dims)
        self.embeddings = nn.Parameter(torch.randn(math.prod(self.index_dims), num_channels) * 0.02)

    @property
    def num_channels(self) -> int:
        return self.embeddings.shape[-1]

    def forward(self, batch_size: int, points: Tensor | None = None) -> Tensor:
        """Return ``(B, N, C)`` encodings, or ``(B, Q, C)`` for the flat grid indices ``points``."""
        return _select(self.embeddings, batch_size, points)


class FourierPositionEncoding(nn.Module):
    """Fixed Fourier features of grid coordinates (no parameters)."""

    def __init__(
        self, num_bands: int, max_resolution: Sequence[int], concat_pos: bool = True, sine_only: bool = False
    ) -> None:
        super().__init__()
        self.num_bands = num_bands
        self.max_resolution = tuple(max_resolution)
        self.concat_pos = concat_pos
        self.sine_only = sine_only

    @property
    def num_channels(self) -> int:
        return fourier_channels(len(self.max_resolution), self.num_bands, self.concat_pos, self.sine_only)

    def forward(
        self,
        batch_size: int,
        index_dims: Sequence[int],
        points: Tensor | None = None,
        pos: Tensor | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Encodings ``(B, N, C)`` of the ``index_dims`` grid, of its flat indices ``points``, or of explicit
        coordinates ``pos`` ``(B, N, D)``."""
        if pos is None:
            if len(index_dims) != len(self.max_resolution):
                raise ValueError(
                    f"Fourier encoding was built for {len(self.max_resolution)}-D positions, "
                    f"got index dims {tuple(index_dims)}"
                )
            grid = linear_positions(index_dims, device=device).reshape(-1, len(index_dims))
            pos = _select(grid, batch_size, points)
        elif pos.shape[-1] != len(self.max_resolution):
            raise ValueError(
                f"positions must have {len(self.max_resolution)} coordinates, got shape {tuple(pos.shape)}"
            )
        return fourier_features(pos, self.num_bands, self.max_resolution, self.concat_pos, self.sine_only).to(dtype)


def rotary_angles(positions: Tensor, head_width: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """``cos`` and ``sin`` of the rotary angles ``positions · θ_i`` for integer ``positions`` ``(..., N)``:
    each ``(..., N, head_width / 2)``, in float32 (``head_width`` must be even)."""
    if head_width % 2:
        raise ValueError(f"rotary position embeddings need an even head width, got {head_width}")
    device = positions.device
    if device.type == "mps":  # MPS has no float64
        positions = positions.cpu()
    inverse_frequencies = base ** (-torch.arange(0, head_width, 2, device=positions.device,
                                                 dtype=torch.float64) / head_width)  # (D/2,)
    # Angles and their cos/sin in float64: positions reach tens of thousands, where a float32 angle is off by
    # ~1e-3 rad.
    angles = positions.to(torch.float64)[..., None] * inverse_frequencies  # (..., N, D/2)
    return angles.cos().float().to(device), angles.sin().float().to(device)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate the channel pairs ``(x_i, x_{i + D/2})`` of ``x`` ``(B, H, N, D)`` by the angles whose ``cos`` /
    ``sin`` are ``(N, D/2)`` or ``(B, N, D/2)`` (from :func:`rotary_angles`); returns ``x``'s shape and dtype."""
    if cos.dim() == 3:  # one row of positions per batch element: broadcast over the heads
        cos, sin = cos[:, None], sin[:, None]  # (B, 1, N, D/2)
    first, second = x.float().chunk(2, dim=-1)  # (B, H, N, D/2) each
    rotated = torch.cat([first * cos - second * sin, second * cos + first * sin], dim=-1)  # (B, H, N, D)
    return rotated.to(x.dtype)
