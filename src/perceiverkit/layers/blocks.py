"""Pre-LayerNorm residual attention blocks: the two building blocks of every Perceiver IO model.

A block is ``x ← x + Attention(LN(x)); x ← x + MLP(LN(x))``. The cross-attention block normalises queries and
keys/values separately and can drop the first residual (``use_query_residual=False``), which decoders use when
their queries are only positions and carry no content worth keeping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor, nn

from .attention import MultiHeadAttention
from .mlp import MLP


class InputsView(Protocol):
    """Something that stands for ``(B, N, kv_dim)`` inputs without being that tensor yet (the factored and
    segmented views of :mod:`perceiverkit.accel`)."""

    @property
    def shape(self) -> torch.Size: ...

    def materialize(self) -> Tensor: ...


#: ``(block, queries, inputs, mask, need_weights, input_chunk_size)`` → the block's result by a faster path, or
#: ``None`` where the reference applies. See :func:`install_cross_attention_path`.
CrossAttentionPath = Callable[["CrossAttentionBlock", Tensor, "Tensor | InputsView", "Tensor | None", bool,
                               "int | None"], "tuple[Tensor, Tensor | None] | None"]
_installed_path: CrossAttentionPath | None = None


def install_cross_attention_path(path: CrossAttentionPath | None) -> None:
    """Let :meth:`CrossAttentionBlock.forward` try ``path`` first (``None``: always the reference).
    :mod:`perceiverkit.accel.cross_attention` installs its dispatch here on import. The dispatch runs inside the
    block's own call, so module hooks (FSDP gathering the block's sharded weights) see every path."""
    global _installed_path
    _installed_path = path


class CrossAttentionBlock(nn.Module):
    """Queries ``(B, M, q_dim)`` attend to inputs ``(B, N, kv_dim)``; output has the queries' shape.

    The encoder's cross-attention can also take faster paths to the same result (inputs kept factored, chunked
    inputs, several modalities): the dispatch installed by :mod:`perceiverkit.accel.cross_attention` computes the
    attention its own way and finishes with :meth:`residual_and_mlp`, the same second half as the reference.
    """

    def __init__(
        self,
        q_dim: int,
        kv_dim: int,
        qk_channels: int,
        v_channels: int,
        num_heads: int,
        widening_factor: int = 1,
        use_query_residual: bool = True,
        activation: str = "gelu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(q_dim)
        self.norm_kv = nn.LayerNorm(kv_dim)
        self.attention = MultiHeadAttention(
            q_dim, kv_dim, qk_channels, v_channels, num_heads, out_dim=q_dim, self_attention=False, dropout=dropout
        )
        self.use_query_residual = use_query_residual
        self.norm_mlp = nn.LayerNorm(q_dim)
        self.mlp = MLP(q_dim, widening_factor, activation)

    def forward(
        self,
        queries: Tensor,
        inputs: Tensor | InputsView,
        mask: Tensor | None = None,
        need_weights: bool = False,
        input_chunk_size: int | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """``mask`` marks the valid inputs (``True`` = attend), shape ``(B, N)``. ``input_chunk_size`` lets a
        fast path attend to that many inputs at a time; the reference attends to all at once."""
        if _installed_path is not None:
            fast = _installed_path(self, queries, inputs, mask, need_weights, input_chunk_size)
            if fast is not None:
                return fast
        if not isinstance(inputs, Tensor):
            inputs = inputs.materialize()  # (B, N, kv_dim)
        attended, weights = self.attention(self.norm_q(queries), self.norm_kv(inputs), mask, need_weights)
        return self.residual_and_mlp(queries, attended), weights  # (B, M, q_dim)

    def residual_and_mlp(self, queries: Tensor, attended: Tensor) -> Tensor:
        """``x = attended (+ queries); x + MLP(LN(x))``: the block after its attention."""
        x = attended + queries if self.use_query_residual else attended
        return x + self.mlp(self.norm_mlp(x))


class SelfAttentionBlock(nn.Module):
    """Self-attention over ``(B, N, dim)`` with residual connections; output has the input's shape."""

    def __init__(
        self,
        dim: int,
        qk_channels: int,
        v_channels: int,
        num_heads: int,
        widening_factor: int = 1,
        activation: str = "gelu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attention = MultiHeadAttention(
            dim, dim, qk_channels, v_channels, num_heads, out_dim=dim, self_attention=True, dropout=dropout
        )
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = MLP(dim, widening_factor, activation)

    def forward(self, x: Tensor, mask: Tensor | None = None, need_weights: bool = False
                ) -> tuple[Tensor, Tensor | None]:
        """``x`` ``(B, N, dim)``; ``mask`` ``(B, N)`` marks the valid positions (``True`` = attend)."""
        attended, weights = self.attention(self.norm(x), mask=mask, need_weights=need_weights)  # (B, N, dim)
        x = x + attended
        return x + self.mlp(self.norm_mlp(x)), weights
