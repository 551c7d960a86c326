"""Frame pairs for the optical-flow model: normalisation, 3×3 patches, and overlapping tiles."""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

from ..layers.patches import neighbourhood_patches

PATCH_SIZE = 3
PATCH_CHANNELS = PATCH_SIZE * PATCH_SIZE * 3


def frames_to_patches(frames: Tensor, pixel_range: float = 255.0) -> Tensor:
    """RGB frame pairs ``(B, 2, 3, H, W)`` with values in ``[0, pixel_range]`` → the model's input
    ``(B, 2, 27, H, W)``: pixels scaled to [-1, 1], then each pixel's 3×3 neighbourhood (zero-padded)."""
    if frames.dim() != 5 or frames.shape[1] != 2 or frames.shape[2] != 3:
        raise ValueError(f"frames must have shape (batch, 2, 3, height, width), got {tuple(frames.shape)}")
    frames = frames.float()
    if not torch.compiler.is_compiling() and frames.numel():
        high = float(frames.max())
        if high > pixel_range * 1.001:
            raise ValueError(f"frame values reach {high:g}, above pixel_range={pixel_range:g}")
        if pixel_range > 1 and 0 < high <= 1.0:
            warnings.warn("frames look like values in [0, 1] but pixel_range is 255; pass pixel_range=1.0",
                          stacklevel=3)
    normalised = frames / pixel_range * 2 - 1
    b, _, _, h, w = frames.shape
    patches = neighbourhood_patches(normalised.flatten(0, 1), PATCH_SIZE)
    return patches.reshape(b, 2, PATCH_CHANNELS, h, w)


def tile_starts(size: int, tile: int, min_overlap: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` that cover ``size`` with at least ``min_overlap`` of overlap,
    spread evenly and flush with both ends."""
    if size <= tile:
        return [0]
    if not 0 <= min_overlap < tile:
        raise ValueError(f"tile overlap must lie in [0, {tile}), got {min_overlap}")
    count = math.ceil((size - tile) / (tile - min_overlap)) + 1
    return [round(i * (size - tile) / (count - 1)) for i in range(count)]


def tile_weights(height: int, width: int, device: torch.device | None = None) -> Tensor:
    """Stitching weights ``(H, W)``: each pixel's distance (≥ 1) to the tile's nearest edge, so that where
    tiles overlap the one whose centre is nearer dominates and seams blend smoothly."""
    ys = torch.arange(height, device=device, dtype=torch.float32)
    xs = torch.arange(width, device=device, dtype=torch.float32)
    wy = torch.minimum(ys + 1, height - ys)
    wx = torch.minimum(xs + 1, width - xs)
    return torch.minimum(wy[:, None], wx[None, :])
