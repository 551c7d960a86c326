"""Chunked cross-attention: the inputs attended to ``chunk_size`` at a time with an online softmax.

Taken by the encoder's cross-attention when the encoder's ``input_chunk_size`` is set, the inputs are longer than
it and the attention weights are not asked for (they are ``M × N`` themselves). The key/value array (the inputs)
can be far larger than anything else in the model; chunked, the ``queries × keys`` scores and the layer-normed
and projected inputs never exist for all inputs at once, so memory is ``O(M × chunk)`` instead of ``O(M × N)``.
With gradients, each chunk is recomputed in the backward pass rather than stored. Same result as the reference
up to float rounding; attention dropout draws different random masks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..layers.attention import MultiHeadAttention, expand_mask
from . import online_softmax

#: Maps a key range ``[start, end)`` to that chunk's keys ``(B, H, end - start, D)`` and values
#: ``(B, H, end - start, Dv)``; see :func:`attend_chunked`.
KeyValueFn = Callable[[int, int], tuple[Tensor, Tensor]]


def check_chunk_size(value: object, name: str = "chunk_size", allow_none: bool = True) -> int | None:
    """Return ``value`` if it is a positive ``int`` (or ``None`` when ``allow_none``); otherwise raise
    ``ValueError`` naming ``name`` and what it should be."""
    # bool is an int subclass, but `True` as a chunk size is always a mistake.
    if (value is None and allow_none) or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        return value
    expected = "a positive integer or None" if allow_none else "a positive integer"
    raise ValueError(f"{name} must be {expected}, got {value!r}")


def attend_chunked(
    q: Tensor,
    key_values: KeyValueFn,
    num_keys: int,
    chunk_size: int,
    mask: Tensor | None = None,
    dropout_p: float = 0.0,
    checkpoint_chunks: bool = False,
    scale: float | None = None,
) -> Tensor:
    """Scaled dot-product attention of ``q`` ``(B, H, M, D)`` over ``num_keys`` keys, ``chunk_size`` at a time.

    The same as :func:`~perceiverkit.layers.attention.attend` (up to float rounding), but the keys and values
    are produced chunk by chunk by ``key_values(start, end)`` and folded into an online softmax
    (:mod:`.online_softmax`), so peak memory is ``O(M × chunk_size)`` rather than ``O(M × N)``.

    Args:
        q: queries ``(B, H, M, D)``.
        key_values: ``(start, end) -> (k, v)`` with ``k`` ``(B, H, end - start, D)`` and ``v``
            ``(B, H, end - start, Dv)``, called once per chunk in order, ``start = 0, chunk_size, 2 × chunk_size,
            …`` (and again in the backward pass when ``checkpoint_chunks``). Computing keys/values inside it
            (rather than slicing precomputed ones) is what keeps the projected inputs from ever existing for all
            keys.
        num_keys: total number of keys ``N``.
        chunk_size: keys per chunk (the last chunk may be shorter).
        mask: boolean, ``True`` = attend, shape ``(B, N)`` or ``(B, M, N)``. A query with no valid key at all
            returns zeros, as in the reference.
        dropout_p: dropout on the attention weights (pass 0 outside training). Each weight is dropped
            independently with probability ``dropout_p`` and the rest scaled by ``1 / (1 - dropout_p)``, as in
            the reference; the random masks differ from the unchunked path's.
        checkpoint_chunks: recompute each chunk in the backward pass (:func:`torch.utils.checkpoint.checkpoint`)
            instead of storing its activations. Only the per-chunk softmax state ``(B, H, M, Dv + 2)`` is stored,
            so training memory grows as ``M × Dv × N / chunk_size`` instead of ``M × H × N``.
            Dropout masks are reproduced exactly in the recomputation.
        scale: multiplies the scores (default ``1/√D``).

    Returns:
        The context ``(B, H, M, Dv)`` in ``q``'s dtype.
    """
    check_chunk_size(chunk_size, allow_none=False)
    if num_keys < 1:
        raise ValueError(f"attend_chunked needs at least one key, got num_keys={num_keys}")
    if q.dim() != 4:
        raise ValueError(f"queries must have shape (batch, heads, queries, channels), got {tuple(q.shape)}")
    if mask is not None:
        if mask.shape[-1] != num_keys:
            raise ValueError(f"mask must have {num_keys} keys in its last dimension, got shape {tuple(mask.shape)}")
        mask = expand_mask(mask)  # (B, 1, M|1, N)
    dtype = q.dtype
    # Scale the queries once instead of every chunk's scores.
    q = q * (q.shape[-1] ** -0.5 if scale is None else scale)

    def step(running_max: Tensor, running_sum: Tensor, acc: Tensor | None, start: int, end: int
             ) -> tuple[Tensor, Tensor, Tensor]:
        k, v = key_values(start, end)
        chunk_mask = None if mask is None else mask[..., start:end]
        return online_softmax.fold((running_max, running_sum, acc), q, k, v, chunk_mask, dropout_p)

    state = online_softmax.start(q)
    for start in range(0, num_keys, chunk_size):
        end = min(start + chunk_size, num_keys)
        if checkpoint_chunks:
            # Saving the RNG state costs a copy per chunk; only dropout needs it to redraw the same masks.
            state = checkpoint(step, *state, start, end, use_reentrant=False, preserve_rng_state=dropout_p > 0.0)
        else:
            state = step(*state, start, end)
    return online_softmax.finish(state, dtype)


def chunked_cross_attention(
    attention: MultiHeadAttention,
    queries: Tensor,
    inputs: Tensor,
    chunk_size: int,
    mask: Tensor | None = None,
    input_transform: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """``attention(queries, input_transform(inputs), mask)[0]`` for queries ``(B, M, q_dim)`` and inputs
    ``(B, N, kv_dim)``, computed ``chunk_size`` inputs at a time (:func:`attend_chunked`).

    ``input_transform`` (e.g. the block's LayerNorm) is applied to each chunk of inputs before the key/value
    projection, so that neither the transformed nor the projected inputs exist for all ``N`` at once. When
    gradients are needed, each chunk is recomputed in the backward pass rather than stored.
    """
    if attention.is_self_attention:
        raise ValueError("chunked attention chunks the keys/values of cross-attention; this is self-attention")
    if inputs.dim() != 3:
        raise ValueError(f"inputs must have shape (batch, index, kv_dim), got {tuple(inputs.shape)}")
    check_chunk_size(chunk_size, allow_none=False)
    q = attention.split_heads(attention.q_proj(queries))  # (B, H, M, D)
    qk, v_channels = attention.qk_channels, attention.v_channels
    # One split rather than a slice per chunk: in the backward pass a split gathers the chunks' input
    # gradients with one concatenation, whereas every slice would scatter into its own (B, N, kv_dim) zeros,
    # which is quadratic in N.
    pieces = inputs.split(chunk_size, dim=1)

    def key_values(start: int, end: int) -> tuple[Tensor, Tensor]:
        chunk = pieces[start // chunk_size]
        if input_transform is not None:
            chunk = input_transform(chunk)
        k, v = attention.kv_proj(chunk).split([qk, v_channels], dim=-1)
        return attention.split_heads(k), attention.split_heads(v)

    needs_grad = torch.is_grad_enabled() and (
        q.requires_grad
        or inputs.requires_grad
        or any(p.requires_grad for p in attention.kv_proj.parameters())
        or (isinstance(input_transform, nn.Module) and any(p.requires_grad for p in input_transform.parameters()))
    )
    dropout_p = attention.dropout if attention.training else 0.0
    out = attend_chunked(q, key_values, inputs.shape[1], chunk_size, mask, dropout_p=dropout_p,
                         checkpoint_chunks=needs_grad)  # (B, H, M, Dv / H)
    return attention.merge_heads_and_project(out)
