"""Rearranging pixels: space-to-depth patching and the 3×3 neighbourhood patches used by optical flow."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def space_to_depth(frames: Tensor, spatial_block: int = 1, temporal_block: int = 1) -> Tensor:
    """Fold non-overlapping blocks into channels, channels-last.

    ``(B, C, H, W)`` → ``(B, H/s, W/s, s·s·C)``; ``(B, T, C, H, W)`` → ``(B, T/t, H/s, W/s, t·s·s·C)``.
    Within a block, channels are ordered (time, row, column, channel), the published models' order.
    """
    s, t = spatial_block, temporal_block
    if frames.dim() == 4:
        b, c, h, w = frames.shape
        _check_divisible(h, w, s)
        x = frames.reshape(b, c, h // s, s, w // s, s).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, h // s, w // s, s * s * c)
    if frames.dim() == 5:
        b, time, c, h, w = frames.shape
        _check_divisible(h, w, s)
        if time % t:
            raise ValueError(f"{time} frames are not divisible by the temporal block size {t}")
        x = frames.reshape(b, time // t, t, c, h // s, s, w // s, s).permute(0, 1, 4, 6, 2, 5, 7, 3)
        return x.reshape(b, time // t, h // s, w // s, t * s * s * c)
    raise ValueError(f"expected frames of shape (B, C, H, W) or (B, T, C, H, W), got {tuple(frames.shape)}")


def _check_divisible(h: int, w: int, s: int) -> None:
    if h % s or w % s:
        raise ValueError(f"image size {h}×{w} is not divisible by the patch size {s}")


def neighbourhood_patches(images: Tensor, size: int = 3) -> Tensor:
    """Each pixel's ``size × size`` neighbourhood stacked into channels, with zero padding at the borders.

    ``(B, C, H, W)`` → ``(B, size·size·C, H, W)``, channels ordered (row, column, channel) as TensorFlow's
    ``extract_patches`` with 'SAME' padding, which the published optical-flow model was trained on.
    """
    b, c, h, w = images.shape
    cols = F.unfold(images, kernel_size=size, padding=size // 2)  # (B, C·k·k, H·W), ordered (channel, row, col)
    cols = cols.reshape(b, c, size * size, h, w).transpose(1, 2)
    return cols.reshape(b, size * size * c, h, w)
