"""Multi-head attention with separate query/key and value widths.

Perceiver IO attends between arrays of different widths (latents vs. inputs vs. output queries), so the
query/key projection width and the value width are independent of each other and of the input widths. The
projections live here; how the attention itself is computed (fused SDPA, explicit, padded, chunked with an online
softmax, or over segments) is :mod:`perceiverkit.layers.attention_ops`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .attention_ops import (
    ATTENTION_KERNELS,
    AttentionKernel,
    KeySegment,
    attend,
    attend_chunked,
    attend_segments,
    check_chunk_size,
)


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
        #: How :func:`attend` computes this module's attention (a runtime choice; every kernel gives the same
        #: result up to float rounding). See :func:`set_attention_kernel`.
        self.kernel: AttentionKernel = "auto"

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
        out, weights = attend(self._heads(q), self._heads(k), self._heads(v), mask, dropout_p, need_weights,
                              kernel=self.kernel)
        return self._project_out(out), weights

    def _project_out(self, out: Tensor) -> Tensor:
        """Merge the heads of ``(B, H, M, Dv)`` and apply the output projection."""
        batch, _, length, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, self.v_channels))

    def forward_low_rank(
        self,
        queries: Tensor,
        basis: Callable[[int, int], Tensor],
        num_inputs: int,
        mixing: Tensor,
        mask: Tensor | None = None,
        need_weights: bool = False,
        chunk_size: int | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Cross-attention to inputs whose projected keys/values are ``basis(0, N) @ mixing`` (what
        ``kv_proj(inputs)`` gives), computed without forming the keys and values.

        Scores are ``(q·Mₖᵀ)·bᵀ`` and the context ``(Σ weights·b)·Mᵥ``, so the ``num_inputs``-long work runs at the
        basis width instead of the projections' (see :mod:`perceiverkit.layers.factored`). ``basis(start, end)``
        returns the ``(B, end - start, W)`` basis vectors of inputs ``start:end``; with ``chunk_size`` it is
        called once per chunk and attention runs with an online softmax (:func:`attend_chunked`). Same result as
        :meth:`forward` on the projected inputs, up to float rounding; returns the output and, if requested, the
        weights.
        """
        if self.is_self_attention:
            raise ValueError("forward_low_rank is for cross-attention; this is self-attention")
        heads, qk = self.num_heads, self.qk_channels
        if mixing.dim() != 2 or mixing.shape[1] != qk + self.v_channels:
            raise ValueError(f"mixing must have shape (basis width, {qk + self.v_channels}), got {tuple(mixing.shape)}")
        key_map, value_map = self._basis_maps(mixing)
        q = self._heads(self.q_proj(queries))
        q_basis = torch.matmul(q, key_map.to(q.dtype))  # (B, H, M, W)
        scale = (qk // heads) ** -0.5  # the scale of the projected width, not the basis width

        def heads_view(b: Tensor) -> Tensor:
            # Keys and values are the same basis vectors, shared by all heads.
            return b.unsqueeze(1).expand(-1, heads, -1, -1)

        dropout_p = self.dropout if self.training else 0.0
        weights = None
        if chunk_size is not None and not need_weights and num_inputs > chunk_size:
            def key_values(start: int, end: int) -> tuple[Tensor, Tensor]:
                chunk = heads_view(basis(start, end))
                return chunk, chunk

            # Recompute each chunk's basis in the backward pass rather than keep it (anything may need gradients:
            # the queries, the mixing weights, trainable positions).
            context = attend_chunked(q_basis, key_values, num_inputs, chunk_size, mask, dropout_p=dropout_p,
                                     checkpoint_chunks=torch.is_grad_enabled(), scale=scale)
        else:
            keys = heads_view(basis(0, num_inputs))
            context, weights = attend(q_basis, keys, keys, mask, dropout_p, need_weights, kernel=self.kernel,
                                      scale=scale)
        out = torch.matmul(context, value_map.to(context.dtype))  # (B, H, M, Dv / H)
        return self._project_out(out), weights

    def _basis_maps(self, mixing: Tensor) -> tuple[Tensor, Tensor]:
        """Per head, the ``(H, D, W)`` query-side and ``(H, W, Dv)`` value-side maps of a basis' mixing matrix."""
        heads, qk = self.num_heads, self.qk_channels
        width = mixing.shape[0]
        key_map = mixing[:, :qk].reshape(width, heads, qk // heads).permute(1, 2, 0)
        value_map = mixing[:, qk:].reshape(width, heads, self.v_channels // heads).transpose(0, 1)
        return key_map, value_map

    def forward_segments(
        self,
        queries: Tensor,
        segments: list[tuple[Tensor, Tensor | None]],
        mask: Tensor | None = None,
    ) -> Tensor:
        """Cross-attention to inputs given as consecutive runs, each either a basis ``(B, N_s, W_s)`` with its
        mixing matrix (``basis @ mixing`` = what ``kv_proj`` gives for those inputs; see :meth:`forward_low_rank`)
        or inputs ``(B, N_s, kv_dim)`` to project (mixing ``None``), under one softmax (:func:`attend_segments`).
        Same result as :meth:`forward` on the concatenated inputs, up to float rounding; no attention weights.
        """
        if self.is_self_attention:
            raise ValueError("forward_segments is for cross-attention; this is self-attention")
        qk, heads = self.qk_channels, self.num_heads
        q = self._heads(self.q_proj(queries))
        runs: list[KeySegment] = []
        for inputs, mixing in segments:
            if mixing is None:
                k, v = self.kv_proj(inputs).split([qk, self.v_channels], dim=-1)
                runs.append((q, self._heads(k), self._heads(v), None))
                continue
            if mixing.dim() != 2 or mixing.shape[1] != qk + self.v_channels or mixing.shape[0] != inputs.shape[-1]:
                raise ValueError(f"mixing must have shape ({inputs.shape[-1]}, {qk + self.v_channels}), "
                                 f"got {tuple(mixing.shape)}")
            key_map, value_map = self._basis_maps(mixing)
            keys = inputs.unsqueeze(1).expand(-1, heads, -1, -1)  # one basis, shared by all heads
            runs.append((torch.matmul(q, key_map.to(q.dtype)), keys, keys, value_map))
        dropout_p = self.dropout if self.training else 0.0
        out = attend_segments(runs, mask, dropout_p, scale=(qk // heads) ** -0.5)
        return self._project_out(out)

    def forward_chunked(
        self,
        queries: Tensor,
        inputs: Tensor,
        chunk_size: int,
        mask: Tensor | None = None,
        input_transform: Callable[[Tensor], Tensor] | None = None,
    ) -> Tensor:
        """Cross-attention from ``queries`` ``(B, M, q_dim)`` to ``inputs`` ``(B, N, kv_dim)``, ``chunk_size``
        inputs at a time (see :func:`attend_chunked`); equals ``forward(queries, input_transform(inputs), mask)[0]``.

        ``input_transform`` (e.g. the block's LayerNorm) is applied to each chunk of inputs before the key/value
        projection, so that neither the transformed nor the projected inputs exist for all ``N`` at once. When
        gradients are needed, each chunk is recomputed in the backward pass rather than stored.
        """
        if self.is_self_attention:
            raise ValueError("forward_chunked chunks the keys/values of cross-attention; this is self-attention")
        if inputs.dim() != 3:
            raise ValueError(f"inputs must have shape (batch, index, kv_dim), got {tuple(inputs.shape)}")
        check_chunk_size(chunk_size, allow_none=False)
        q = self._heads(self.q_proj(queries))
        qk, v_channels = self.qk_channels, self.v_channels
        # One split rather than a slice per chunk: in the backward pass a split gathers the chunks' input
        # gradients with one concatenation, whereas every slice would scatter into its own (B, N, kv_dim) zeros,
        # which is quadratic in N.
        pieces = inputs.split(chunk_size, dim=1)

        def key_values(start: int, end: int) -> tuple[Tensor, Tensor]:
            chunk = pieces[start // chunk_size]
            if input_transform is not None:
                chunk = input_transform(chunk)
            k, v = self.kv_proj(chunk).split([qk, v_channels], dim=-1)
            return self._heads(k), self._heads(v)

        needs_grad = torch.is_grad_enabled() and (
            q.requires_grad
            or inputs.requires_grad
            or any(p.requires_grad for p in self.kv_proj.parameters())
            or (isinstance(input_transform, nn.Module) and any(p.requires_grad for p in input_transform.parameters()))
        )
        dropout_p = self.dropout if self.training else 0.0
        out = attend_chunked(
            q, key_values, inputs.shape[1], chunk_size, mask, dropout_p=dropout_p, checkpoint_chunks=needs_grad
        )
        return self._project_out(out)


def set_attention_kernel(model: nn.Module, kernel: AttentionKernel, self_attention_only: bool = False) -> int:
    """Make every :class:`MultiHeadAttention` in ``model`` (only the self-attentions, if asked) use ``kernel``
    (see :func:`attend`); returns how many modules were set.

    Raises:
        ValueError: for an unknown kernel name.
    """
    if kernel not in ATTENTION_KERNELS:
        raise ValueError(f"attention kernel must be one of {list(ATTENTION_KERNELS)}, got {kernel!r}")
    modules = [m for m in model.modules() if isinstance(m, MultiHeadAttention)
               and (m.is_self_attention or not self_attention_only)]
    for module in modules:
        module.kernel = kernel
    return len(modules)
