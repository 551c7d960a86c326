"""Multi-head attention with separate query/key and value widths: the reference path.

Perceiver IO attends between arrays of different widths (latents vs. inputs vs. output queries), so the
query/key projection width and the value width are independent of each other and of the input widths.

:func:`attend` is scaled dot-product attention as the textbook writes it, and :class:`MultiHeadAttention` is the
projections around it. Faster ways to compute the same attention live in :mod:`perceiverkit.accel`; since
``layers/`` imports nothing above itself, the one way in for them is :func:`install_attention_kernel`, which
:mod:`perceiverkit.accel.kernels` calls when it is imported. Without it (or inside
:func:`perceiverkit.accel.reference_path`) every module here runs exactly the code below.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def expand_mask(mask: Tensor) -> Tensor:
    """Turn a ``(B, N)`` key-padding mask or a ``(B, M, N)`` mask into a 4-D ``(B, 1, M|1, N)`` mask."""
    if mask.dtype != torch.bool:
        raise TypeError(f"attention masks must be boolean (True = attend), got dtype {mask.dtype}")
    if mask.dim() == 2:
        return mask[:, None, None, :]
    if mask.dim() == 3:
        return mask[:, None, :, :]
    raise ValueError(f"attention mask must have shape (batch, keys) or (batch, queries, keys), got {tuple(mask.shape)}")


def softmax_mask(mask: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
    """``mask`` as ``(B, 1, M|1, N)`` with rows that have no valid key opened to every key, and which rows have
    one ``(B, 1, M|1, 1)``. Those rows then give finite maths and finite gradients; multiply the context by the
    second tensor to return zeros for them."""
    if mask is None:
        return None, None
    mask = expand_mask(mask)
    has_key = mask.any(dim=-1, keepdim=True)
    return mask | ~has_key, has_key


def masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Softmax over the last axis of ``scores`` ``(B, H, M, N)``, with the keys where ``mask`` is ``False`` left out."""
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    # dtype= keeps autocast from widening the weights to float32 (the kernel accumulates in float32 anyway).
    return scores.softmax(dim=-1, dtype=scores.dtype)


def attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    dropout_p: float = 0.0,
    need_weights: bool = False,
    scale: float | None = None,
) -> tuple[Tensor, Tensor | None]:
    """``softmax(scale · q·kᵀ) · v`` over ``(B, H, M, D)`` queries, ``(B, H, N, D)`` keys, ``(B, H, N, Dv)`` values.

    ``mask`` is boolean, ``True`` = attend, of shape ``(B, N)`` or ``(B, M, N)``. A query whose keys are all
    masked returns zeros (softmax over an empty set is undefined; kernels disagree on NaN vs. uniform weights).
    ``scale`` multiplies the scores (default ``1/√D``). Runs
    :func:`~torch.nn.functional.scaled_dot_product_attention`, or, when the weights are asked for, the explicit
    softmax that forms them. Returns the context ``(B, H, M, Dv)`` and, when ``need_weights``, the weights
    ``(B, H, M, N)``.
    """
    mask, has_key = softmax_mask(mask)  # (B, 1, M|1, N), (B, 1, M|1, 1)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    weights = None
    if need_weights:
        weights = masked_softmax(torch.matmul(q * scale, k.transpose(-1, -2)), mask)  # (B, H, M, N)
        out = torch.matmul(F.dropout(weights, p=dropout_p) if dropout_p > 0.0 else weights, v)  # (B, H, M, Dv)
        if has_key is not None:
            weights = weights * has_key.to(weights.dtype)
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
    if has_key is not None:
        out = out * has_key.to(out.dtype)
    return out, weights


#: ``(module, q, k, v, mask, dropout_p, need_weights) -> (context, weights)``: a kernel that computes
#: :func:`attend`'s result for ``module``, see :func:`install_attention_kernel`.
AttentionKernelFn = Callable[["MultiHeadAttention", Tensor, Tensor, Tensor, Tensor | None, float, bool],
                             tuple[Tensor, Tensor | None]]
_installed_kernel: AttentionKernelFn | None = None


def install_attention_kernel(kernel: AttentionKernelFn | None) -> None:
    """Make every :class:`MultiHeadAttention` compute :func:`attend`'s result with ``kernel`` (``None``: with
    :func:`attend` itself). :mod:`perceiverkit.accel.kernels` installs its choice of kernel here on import."""
    global _installed_kernel
    _installed_kernel = kernel


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

    def split_heads(self, x: Tensor) -> Tensor:
        """``(B, L, H·D)`` → ``(B, H, L, D)``."""
        batch, length, width = x.shape
        return x.view(batch, length, self.num_heads, width // self.num_heads).transpose(1, 2)

    def merge_heads_and_project(self, out: Tensor) -> Tensor:
        """``(B, H, M, Dv / H)`` → the output projection of the merged heads ``(B, M, out_dim)``."""
        batch, _, length, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, self.v_channels))

    def forward(
        self,
        queries: Tensor,
        inputs: Tensor | None = None,
        mask: Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``queries`` ``(B, M, q_dim)`` to ``inputs`` ``(B, N, kv_dim)`` (self-attention: to itself).

        ``mask`` ``(B, N)`` or ``(B, M, N)`` is ``True`` where a query may attend. Returns the projected output
        ``(B, M, out_dim)`` and, if requested, the weights ``(B, H, M, N)``.
        """
        qk = self.qk_channels
        if self.is_self_attention:
            q, k, v = self.qkv_proj(queries).split([qk, qk, self.v_channels], dim=-1)  # (B, M, D·H) ×2, (B, M, Dv·H)
        else:
            if inputs is None:
                raise ValueError("cross-attention needs `inputs` to attend to")
            q = self.q_proj(queries)  # (B, M, D·H)
            k, v = self.kv_proj(inputs).split([qk, self.v_channels], dim=-1)  # (B, N, D·H), (B, N, Dv·H)
        q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)  # (B, H, M|N, D|Dv)
        dropout_p = self.dropout if self.training else 0.0
        out, weights = self.attend(q, k, v, mask, dropout_p, need_weights)  # (B, H, M, Dv), (B, H, M, N) | None
        return self.merge_heads_and_project(out), weights  # (B, M, out_dim), (B, H, M, N) | None

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float,
               need_weights: bool) -> tuple[Tensor, Tensor | None]:
        """:func:`attend` for this module's heads, by the installed kernel when there is one (models that project
        queries, keys and values themselves, e.g. to rotate them, call this between projection and output)."""
        if _installed_kernel is None:
            return attend(q, k, v, mask, dropout_p, need_weights)
        return _installed_kernel(self, q, k, v, mask, dropout_p, need_weights)
