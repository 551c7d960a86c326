"""Multi-head attention with separate query/key and value widths.

Perceiver IO attends between arrays of different widths (latents vs. inputs vs. output queries), so the
query/key projection width and the value width are independent of each other and of the input widths.
All attention goes through :func:`torch.nn.functional.scaled_dot_product_attention` so that the fused
flash / memory-efficient kernels run on GPU; an explicit softmax path exists only for when the caller asks for
the attention weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _expand_mask(mask: Tensor) -> Tensor:
    """Turn a ``(B, N)`` key-padding mask or a ``(B, M, N)`` mask into a 4-D ``(B, 1, M|1, N)`` mask."""
    if mask.dtype != torch.bool:
        raise TypeError(f"attention masks must be boolean (True = attend), got dtype {mask.dtype}")
    if mask.dim() == 2:
        return mask[:, None, None, :]
    if mask.dim() == 3:
        return mask[:, None, :, :]
    raise ValueError(f"attention mask must have shape (batch, keys) or (batch, queries, keys), got {tuple(mask.shape)}")


def attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    dropout_p: float = 0.0,
    need_weights: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Scaled dot-product attention over ``(B, H, M, D)`` tensors.

    ``mask`` is boolean, ``True`` = attend, of shape ``(B, N)`` or ``(B, M, N)``. A query whose keys are all
    masked returns zeros (softmax over an empty set is undefined; kernels disagree on NaN vs. uniform weights).
    Returns the context ``(B, H, M, Dv)`` and, when ``need_weights``, the weights ``(B, H, M, N)``.
    """
    has_key: Tensor | None = None
    if mask is not None:
        mask = _expand_mask(mask)
        has_key = mask.any(dim=-1, keepdim=True)
        # Rows with no valid key attend everywhere (finite maths, finite gradients) and are zeroed below.
        mask = mask | ~has_key
    if need_weights:
        scores = torch.matmul(q, k.transpose(-1, -2)) * q.shape[-1] ** -0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1)
        if has_key is not None:
            weights = weights * has_key.to(weights.dtype)
        out = torch.matmul(F.dropout(weights, p=dropout_p), v)
    else:
        weights = None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        if has_key is not None:
            out = out * has_key.to(out.dtype)
    return out, weights


class MultiHeadAttention(nn.Module):
    """Multi-head attention from ``q_dim``-wide queries to ``kv_dim``-wide keys/values.

    Projections are fused where the inputs coincide: one ``qkv_proj`` for self-attention, a ``q_proj`` and a
    ``kv_proj`` for cross-attention. Fewer, larger matmuls are faster on every backend.

    Args:
        q_dim: width of the query input.
        kv_dim: width of the key/value input (ignored for self-attention, which uses ``q_dim``).
        qk_channels: total query/key width across heads.
        v_channels: total value width across heads.
        num_heads: number of heads; must divide ``qk_channels`` and ``v_channels``.
        out_dim: width of the output projection.
        self_attention: whether queries, keys and values come from the same array.
        dropout: dropout on the attention weights during training.
    """

    def __init__(
        self,
        q_dim: int,
        kv_dim: int,
        qk_channels: int,
        v_channels: int,
        num_heads: int,
        out_dim: int,
        self_attention: bool,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        for name, width in (("qk_channels", qk_channels), ("v_channels", v_channels)):
            if width % num_heads != 0:
                raise ValueError(f"{name} ({width}) must be divisible by the number of heads ({num_heads})")
        self.num_heads = num_heads
        self.qk_channels = qk_channels
        self.v_channels = v_channels
        self.is_self_attention = self_attention
        self.dropout = dropout
        if self_attention:
            self.qkv_proj = nn.Linear(q_dim, 2 * qk_channels + v_channels)
        else:
            self.q_proj = nn.Linear(q_dim, qk_channels)
            self.kv_proj = nn.Linear(kv_dim, qk_channels + v_channels)
        self.out_proj = nn.Linear(v_channels, out_dim)

    def _heads(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        return x.view(batch, length, self.num_heads, width // self.num_heads).transpose(1, 2)

    def forward(
        self,
        queries: Tensor,
        inputs: Tensor | None = None,
        mask: Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``queries`` ``(B, M, q_dim)`` to ``inputs`` ``(B, N, kv_dim)`` (self-attention: to itself).

        Returns the projected output ``(B, M, out_dim)`` and, if requested, the weights ``(B, H, M, N)``.
        """
        qk = self.qk_channels
        if self.is_self_attention:
            q, k, v = self.qkv_proj(queries).split([qk, qk, self.v_channels], dim=-1)
        else:
            if inputs is None:
                raise ValueError("cross-attention needs `inputs` to attend to")
            q = self.q_proj(queries)
            k, v = self.kv_proj(inputs).split([qk, self.v_channels], dim=-1)
        dropout_p = self.dropout if self.training else 0.0
        out, weights = attend(self._heads(q), self._heads(k), self._heads(v), mask, dropout_p, need_weights)
        batch, _, length, _ = out.shape
        out = out.transpose(1, 2).reshape(batch, length, self.v_channels)
        return self.out_proj(out), weights
