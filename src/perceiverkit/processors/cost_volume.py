"""Local matching costs between two frames, as extra input features for the optical-flow model.

The published flow model sees each pixel's 3×3 patch in both frames and must discover by itself where a patch
went; that takes far more training than a small model on a CPU gets (a small model sat at the zero-flow level
for a thousand steps). A cost volume hands it the evidence directly: for each pixel and each displacement ``d``
of a grid, the normalised cross-correlation between the pixel's patch in frame 1 and the patch at ``x + d`` in
frame 2 — the classic block-matching score (as in PWC-Net and RAFT's correlation layers). The Perceiver still
does the rest: it reads these scores with the patches and positions, and its latents smooth the field.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..interfaces import Preprocessor
from .base import Preprocessed


def displacements(radius: int, stride: int) -> list[tuple[int, int]]:
    """The ``(dy, dx)`` grid: multiples of ``stride`` from ``-radius·stride`` to ``radius·stride``, row-major."""
    steps = range(-radius * stride, radius * stride + 1, stride)
    return [(dy, dx) for dy in steps for dx in steps]


def local_correlation(patches: Tensor, radius: int, stride: int = 1, eps: float = 1e-6) -> Tensor:
    """Normalised cross-correlation of frame-1 patches with displaced frame-2 patches.

    Args:
        patches: ``(B, 2, C, H, W)`` per-pixel patch vectors of both frames (the flow model's input).
        radius, stride: displacements ``(dy, dx)`` from :func:`displacements`.
    Returns:
        ``(B, K, H, W)`` with ``K = (2·radius + 1)²``: channel ``k`` at pixel ``x`` is the cosine similarity of
        the mean-removed patches ``p₁(x)`` and ``p₂(x + d_k)``, in ``[-1, 1]``; 0 where ``x + d_k`` leaves the frame.
    """
    if patches.dim() != 5 or patches.shape[1] != 2:
        raise ValueError(f"patches must have shape (batch, 2, channels, height, width), got {tuple(patches.shape)}")
    if radius < 0 or stride < 1:
        raise ValueError(f"need radius >= 0 and stride >= 1, got radius={radius}, stride={stride}")
    centred = patches - patches.mean(dim=2, keepdim=True)
    unit = centred / (centred.norm(dim=2, keepdim=True) + eps)
    first, second = unit[:, 0], unit[:, 1]
    reach = radius * stride
    height, width = patches.shape[-2:]
    padded = F.pad(second, (reach, reach, reach, reach))
    costs = [(first * padded[..., reach + dy:reach + dy + height, reach + dx:reach + dx + width]).sum(dim=1)
             for dy, dx in displacements(radius, stride)]
    return torch.stack(costs, dim=1)


class CostVolumePreprocessor(nn.Module):
    """Wraps the flow model's patch preprocessor and appends each pixel's matching costs to its features.

    Output channels: the wrapped preprocessor's plus ``(2·radius + 1)²``. ``inputs_without_pos`` is left as the
    wrapped preprocessor made it (the costs are appended only to ``inputs``).
    """

    def __init__(self, inner: Preprocessor, radius: int, stride: int = 1) -> None:
        super().__init__()
        if radius < 1 or stride < 1:
            raise ValueError(f"a cost volume needs radius >= 1 and stride >= 1, got radius={radius}, stride={stride}")
        self.inner, self.radius, self.stride = inner, radius, stride

    @property
    def num_cost_channels(self) -> int:
        return (2 * self.radius + 1) ** 2

    @property
    def num_channels(self) -> int:
        return self.inner.num_channels + self.num_cost_channels

    def forward(self, patches: Tensor, *args: object, **kwargs: object) -> Preprocessed:
        pre = self.inner(patches, *args, **kwargs)
        costs = local_correlation(patches.float(), self.radius, self.stride)
        costs = costs.flatten(2).transpose(1, 2).to(pre.inputs.dtype)  # (B, H·W, K), rows in the grid's order
        return Preprocessed(torch.cat([pre.inputs, costs], dim=-1), pre.index_dims, pre.inputs_without_pos,
                            pre.modality_sizes)
