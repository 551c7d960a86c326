"""Segmented inputs: several modalities attended to under one softmax, each factored one in its own basis.

Taken by the encoder's cross-attention when its inputs come as :class:`SegmentedInputs` (the multimodal
preprocessor's view), the attention weights are not asked for, no ``input_chunk_size`` is set, and at least one
segment is cheaper in its basis (:func:`~.factored.factored_is_cheaper`). Each such segment is attended to in its
basis, the others are layer-normed and projected as usual, and the runs of keys are folded into one online
softmax (:mod:`.online_softmax`): the same result as the reference on the concatenated inputs, up to float
rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..layers.attention import MultiHeadAttention, expand_mask
from ..layers.blocks import CrossAttentionBlock
from . import online_softmax
from .factored import (
    FactoredInputs,
    aligned_basis_width,
    basis_maps,
    factored_is_cheaper,
    layer_norm_basis,
    layer_norm_linear_mixing,
)
from .kernels import query_block


@dataclass
class SegmentedInputs:
    """Inputs ``(B, N, C)`` given as consecutive runs along the index axis, each a tensor or
    :class:`~.factored.FactoredInputs` of the same width ``C``: a multimodal model's modalities, each with its own
    basis."""

    segments: tuple[Tensor | FactoredInputs, ...]

    def __post_init__(self) -> None:
        self.segments = tuple(self.segments)
        if not self.segments:
            raise ValueError("SegmentedInputs needs at least one segment")
        shapes = [tuple(s.shape) for s in self.segments]
        if any(len(s) != 3 for s in shapes) or len({(s[0], s[2]) for s in shapes}) != 1:
            raise ValueError(f"segments must share batch size and channels (batch, index, channels), got {shapes}")

    @property
    def shape(self) -> torch.Size:
        batch, _, channels = self.segments[0].shape
        return torch.Size((batch, sum(s.shape[1] for s in self.segments), channels))

    @property
    def dtype(self) -> torch.dtype:
        return self.segments[0].dtype

    @property
    def device(self) -> torch.device:
        return self.segments[0].device

    def materialize(self) -> Tensor:
        """The concatenated ``(B, N, C)`` inputs."""
        pieces = [s.materialize() if isinstance(s, FactoredInputs) else s for s in self.segments]
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)


#: One run of keys for :func:`attend_segments`: the queries mapped into this run's key space ``(B, H, M, D_s)``
#: (unscaled), its keys ``(B, H, N_s, D_s)`` and values ``(B, H, N_s, W_s)``, and a map ``(H, W_s, Dv)`` of the
#: weighted values into the output channels (``None`` when ``W_s`` is already ``Dv``).
KeySegment = tuple[Tensor, Tensor, Tensor, Tensor | None]


def attend_segments(segments: list[KeySegment], mask: Tensor | None = None, dropout_p: float = 0.0,
                    scale: float = 1.0) -> Tensor:
    """Attention over keys that come in consecutive runs, each scored by its own queries and with its own value
    width, under one softmax over all of them.

    The result equals the reference attention on the concatenated keys when every run's ``q_s·k_sᵀ`` are the
    scores of the same queries against its keys and ``v_s·map_s`` its values (up to float rounding). ``mask``
    ``(B, N)`` or ``(B, M, N)`` covers all runs in order; queries with no valid key return zeros. ``scale``
    multiplies every score. Returns the context ``(B, H, M, Dv)`` in the first queries' dtype. Queries are taken
    in blocks so that at most :data:`~.kernels.SCORE_BLOCK_ELEMENTS` scores exist at a time (they are float32
    here, whatever the compute dtype).
    """
    if not segments:
        raise ValueError("attend_segments needs at least one run of keys")
    num_keys = sum(k.shape[-2] for _, k, _, _ in segments)
    if mask is not None:
        if mask.shape[-1] != num_keys:
            raise ValueError(f"mask must have {num_keys} keys in its last dimension, got shape {tuple(mask.shape)}")
        mask = expand_mask(mask)  # (B, 1, M|1, N)
    batch, heads, num_queries, _ = segments[0][0].shape
    block = query_block(num_queries, batch * heads * num_keys)
    if block < num_queries:
        blocks = []
        for start in range(0, num_queries, block):
            rows = slice(start, start + block)
            block_mask = None if mask is None else mask if mask.shape[-2] == 1 else mask[..., rows, :]
            blocks.append(_attend_segments([(q[..., rows, :], k, v, m) for q, k, v, m in segments], block_mask,
                                           dropout_p, scale))
        return torch.cat(blocks, dim=-2)
    return _attend_segments(segments, mask, dropout_p, scale)


def _attend_segments(segments: list[KeySegment], mask: Tensor | None, dropout_p: float, scale: float) -> Tensor:
    """:func:`attend_segments` for one block of queries; ``mask`` is already 4-D."""
    first = segments[0][0]
    state = online_softmax.start(first)
    start = 0
    for q, k, v, value_map in segments:
        end = start + k.shape[-2]
        run_mask = None if mask is None else mask[..., start:end]
        state = online_softmax.fold(state, q * scale, k, v, run_mask, dropout_p, value_map)
        start = end
    return online_softmax.finish(state, first.dtype)


def cheaper_in_basis(block: CrossAttentionBlock, segment: Tensor | FactoredInputs, num_queries: int) -> bool:
    """Whether ``block`` attends to ``segment`` more cheaply in its basis than by projecting it."""
    attention = block.attention
    return isinstance(segment, FactoredInputs) and factored_is_cheaper(
        segment, num_queries, attention.num_heads, attention.qk_channels, attention.v_channels)


def segmented_cross_attention(block: CrossAttentionBlock, queries: Tensor, inputs: SegmentedInputs,
                              mask: Tensor | None) -> Tensor:
    """The attention part of ``block(queries, inputs.materialize(), mask)``: each segment in its own basis where
    that is cheaper, else layer-normed and projected; one softmax over all of them."""
    attention: MultiHeadAttention = block.attention
    qk, heads = attention.qk_channels, attention.num_heads
    q = attention.split_heads(attention.q_proj(block.norm_q(queries)))  # (B, H, M, D)
    runs: list[KeySegment] = []
    for segment in inputs.segments:
        if cheaper_in_basis(block, segment, queries.shape[1]):
            assert isinstance(segment, FactoredInputs)
            width = aligned_basis_width(segment.basis_width, segment.device)
            basis = layer_norm_basis(segment, block.norm_kv.eps, width)  # (B, N_s, W)
            key_map, value_map = basis_maps(attention, layer_norm_linear_mixing(segment, block.norm_kv,
                                                                                attention.kv_proj, width))
            keys = basis.unsqueeze(1).expand(-1, heads, -1, -1)  # one basis, shared by all heads
            runs.append((torch.matmul(q, key_map.to(q.dtype)), keys, keys, value_map))
        else:
            plain = segment.materialize() if isinstance(segment, FactoredInputs) else segment
            k, v = attention.kv_proj(block.norm_kv(plain)).split([qk, attention.v_channels], dim=-1)
            runs.append((q, attention.split_heads(k), attention.split_heads(v), None))
    dropout_p = attention.dropout if attention.training else 0.0
    out = attend_segments(runs, mask, dropout_p, scale=(qk // heads) ** -0.5)  # (B, H, M, Dv / H)
    return attention.merge_heads_and_project(out)
