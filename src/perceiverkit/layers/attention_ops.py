"""Attention as functions of ``(batch, heads, queries, channels)`` tensors: the kernels behind every attention layer.

Attention goes through :func:`torch.nn.functional.scaled_dot_product_attention` so that the fused flash /
cuDNN kernels run on GPU, except where an explicit ``softmax(q·kᵀ)·v`` is faster: on CUDA for heads wider than
the fused kernels' 256 channels (the single-head cross-attentions of the vision, flow and multimodal models:
322, 512, 704 or 1024 wide). There PyTorch falls back to its memory-efficient kernel or, for widths that are not
a multiple of 8, to an unfused path; on an H100 (bf16, PyTorch 2.11, ``benchmarks/gpu_probe.py``) the explicit
path was 1.2–4× faster on every such shape (vision-learned encoder 46 → 11 ms, flow decoder 49 → 20 ms). And on
the CPU where the query/key and value heads differ in width (the language model's 32 and 160): PyTorch's CPU
flash kernel needs one width, so SDPA falls back to its math path, the same matmul-softmax-matmul plus masking
bookkeeping; the explicit path was 1.3–1.4× faster there for inference and level or faster for training
(2 cores, fp32, PyTorch 2.13). It runs over blocks of queries so that the scores never exceed
:data:`SCORE_BLOCK_ELEMENTS` elements at a time. It also serves callers that ask for the attention weights.

:func:`attend_chunked` is the same attention computed over the keys/values one chunk at a time with an online
(running max / running sum) softmax. It exists for the encoder's cross-attention, whose key/value array (the
inputs) can be far larger than anything else in the model: the ``queries × keys`` scores and the projected keys
and values then never exist for all keys at once. :func:`attend_segments` folds runs of keys that each have their
own queries and value map into one such online softmax: the multimodal encoder's modalities, each attended to in
its own basis (:mod:`perceiverkit.layers.factored`).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

#: Maps a key range ``[start, end)`` to that chunk's keys ``(B, H, end - start, D)`` and values
#: ``(B, H, end - start, Dv)``; see :func:`attend_chunked`.
KeyValueFn = Callable[[int, int], tuple[Tensor, Tensor]]


def _expand_mask(mask: Tensor) -> Tensor:
    """Turn a ``(B, N)`` key-padding mask or a ``(B, M, N)`` mask into a 4-D ``(B, 1, M|1, N)`` mask."""
    if mask.dtype != torch.bool:
        raise TypeError(f"attention masks must be boolean (True = attend), got dtype {mask.dtype}")
    if mask.dim() == 2:
        return mask[:, None, None, :]
    if mask.dim() == 3:
        return mask[:, None, :, :]
    raise ValueError(f"attention mask must have shape (batch, keys) or (batch, queries, keys), got {tuple(mask.shape)}")


#: Widest head the fused flash / cuDNN kernels take; wider heads use the explicit path on CUDA.
FUSED_MAX_HEAD_WIDTH = 256
#: Largest ``batch × heads × queries × keys`` score block the explicit path materialises at once (2³⁰ elements:
#: 2 GiB in bf16); more queries are split into equal blocks (large blocks keep the matmuls efficient).
SCORE_BLOCK_ELEMENTS = 1 << 30
AttentionKernel = Literal["auto", "fused", "explicit", "padded"]
ATTENTION_KERNELS: tuple[str, ...] = typing.get_args(AttentionKernel)


def prefers_explicit(q: Tensor, v: Tensor) -> bool:
    """Whether ``kernel="auto"`` takes the explicit path: CUDA tensors with a head wider than the fused kernels
    take, and (outside compiled or exported graphs) CPU tensors whose query/key and value heads differ in width,
    which the CPU flash kernel does not take (see the module docstring for the measurements)."""
    if q.is_cuda:
        return max(q.shape[-1], v.shape[-1]) > FUSED_MAX_HEAD_WIDTH
    # Eager only: a compiled or exported graph keeps the one SDPA node (the compiler lowers it as it sees fit, and
    # the explicit path's query blocks would put guards on a dynamic sequence length).
    return q.device.type == "cpu" and q.shape[-1] != v.shape[-1] and not torch.compiler.is_compiling()


def _query_block(num_queries: int, scores_per_query: int) -> int:
    """Queries per block: equal blocks, as few as keep each under :data:`SCORE_BLOCK_ELEMENTS` scores."""
    blocks = max(1, -(-num_queries * scores_per_query // SCORE_BLOCK_ELEMENTS))
    return max(1, -(-num_queries // blocks))


def _explicit(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float, block: int | None,
              scale: float) -> tuple[Tensor, Tensor]:
    """``softmax(scale·q·kᵀ)·v`` over blocks of ``block`` queries (all at once when None); returns the context and
    the last block's weights (all weights when ``block`` is None)."""
    q = q * scale  # scaling the queries is cheaper than scaling the scores
    num_queries = q.shape[-2]
    block = num_queries if block is None else max(1, block)
    outs, weights = [], q.new_empty(0)
    for start in range(0, num_queries or 1, block):  # (no queries: one empty block)
        scores = torch.matmul(q[..., start:start + block, :], k.transpose(-1, -2))
        if mask is not None:
            rows = mask if mask.shape[-2] == 1 else mask[..., start:start + block, :]
            scores = scores.masked_fill(~rows, torch.finfo(scores.dtype).min)
        # dtype= keeps autocast from widening the weights to float32 (the kernel accumulates in float32 anyway).
        weights = scores.softmax(dim=-1, dtype=scores.dtype)
        outs.append(torch.matmul(F.dropout(weights, p=dropout_p) if dropout_p > 0.0 else weights, v))
    out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-2)
    return out, weights


def _padded_sdpa(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float, scale: float) -> Tensor:
    """SDPA with queries/keys and values zero-padded to one head width (zeros change no score and no output
    channel that is kept)."""
    width = max(q.shape[-1], v.shape[-1])
    if q.shape[-1] < width:
        q, k = F.pad(q, (0, width - q.shape[-1])), F.pad(k, (0, width - k.shape[-1]))
    value_width = v.shape[-1]
    if value_width < width:
        v = F.pad(v, (0, width - value_width))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
    return out[..., :value_width]


def attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    dropout_p: float = 0.0,
    need_weights: bool = False,
    kernel: AttentionKernel = "auto",
    scale: float | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Scaled dot-product attention over ``(B, H, M, D)`` tensors.

    ``mask`` is boolean, ``True`` = attend, of shape ``(B, N)`` or ``(B, M, N)``. A query whose keys are all
    masked returns zeros (softmax over an empty set is undefined; kernels disagree on NaN vs. uniform weights).
    ``kernel``: ``"fused"`` = ``scaled_dot_product_attention``, ``"explicit"`` = matmul-softmax-matmul over query
    blocks, ``"padded"`` = ``scaled_dot_product_attention`` with queries, keys and values zero-padded to one head
    width (exact; the flash kernels need equal widths, e.g. the language model's 32-wide keys and 160-wide
    values), ``"auto"`` = explicit where :func:`prefers_explicit` (or the weights are asked for), else fused.
    ``scale`` multiplies the scores (default ``1/√D``).
    Returns the context ``(B, H, M, Dv)`` and, when ``need_weights``, the weights ``(B, H, M, N)``.
    """
    if kernel not in ATTENTION_KERNELS:
        raise ValueError(f"kernel must be one of {list(ATTENTION_KERNELS)}, got {kernel!r}")
    has_key: Tensor | None = None
    if mask is not None:
        mask = _expand_mask(mask)
        has_key = mask.any(dim=-1, keepdim=True)
        # Rows with no valid key attend everywhere (finite maths, finite gradients) and are zeroed below.
        mask = mask | ~has_key
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    weights = None
    if need_weights or kernel == "explicit" or (kernel == "auto" and prefers_explicit(q, v)):
        block = None if need_weights else _query_block(q.shape[-2], k.shape[0] * k.shape[1] * k.shape[2])
        out, all_weights = _explicit(q, k, v, mask, dropout_p, block, scale)
        if need_weights:
            weights = all_weights if has_key is None else all_weights * has_key.to(all_weights.dtype)
    elif kernel == "padded":
        out = _padded_sdpa(q, k, v, mask, dropout_p, scale)
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
    if has_key is not None:
        out = out * has_key.to(out.dtype)
    return out, weights


def check_chunk_size(value: object, name: str = "chunk_size", allow_none: bool = True) -> int | None:
    """Return ``value`` if it is a positive ``int`` (or ``None`` when ``allow_none``); otherwise raise
    ``ValueError`` naming ``name`` and what it should be."""
    # bool is an int subclass, but `True` as a chunk size is always a mistake.
    if (value is None and allow_none) or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        return value
    expected = "a positive integer or None" if allow_none else "a positive integer"
    raise ValueError(f"{name} must be {expected}, got {value!r}")


def _fold_chunk(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None,
    running_max: Tensor,
    running_sum: Tensor,
    acc: Tensor | None,
    dropout_p: float,
    value_map: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Fold one key/value chunk into the online-softmax state ``(running_max, running_sum, acc)``.

    ``q`` is already scaled. The state is kept in ``running_max.dtype`` (at least float32)
    so that long sums in half precision don't lose the small terms. ``value_map`` ``(H, W, Dv)``, when given,
    maps the chunk's weighted ``W``-wide values into the accumulator's ``Dv`` channels.
    """
    state_dtype = running_max.dtype
    scores = torch.matmul(q, k.transpose(-1, -2)).to(state_dtype)
    if mask is not None:
        # -inf (not finfo.min) so that masked keys contribute exp(-inf) = 0 exactly, with zero gradient.
        scores = scores.masked_fill(~mask, float("-inf"))
    # The running max only stabilises exp(); the result does not depend on it, so it carries no gradient.
    new_max = torch.maximum(running_max, scores.detach().amax(dim=-1, keepdim=True))
    # A query with no valid key so far has max -inf; shift by 0 instead so that exp() sees -inf - 0, not NaN.
    shift = new_max.masked_fill(new_max == float("-inf"), 0.0)
    probs = torch.exp(scores - shift)
    rescale = torch.exp(running_max - shift)  # 0 while no valid key was seen, else exp(old - new) <= 1
    running_sum = running_sum * rescale + probs.sum(dim=-1, keepdim=True)
    if dropout_p > 0.0:
        # Dropping unnormalised weights equals dropping normalised ones: dropout(p / l) = dropout(p) / l. The
        # normaliser `running_sum` keeps the undropped weights, as softmax-then-dropout does.
        probs = F.dropout(probs, p=dropout_p, training=True)
    chunk_out = torch.matmul(probs.to(v.dtype), v)
    if value_map is not None:
        chunk_out = torch.matmul(chunk_out, value_map.to(chunk_out.dtype))
    chunk_out = chunk_out.to(state_dtype)
    acc = chunk_out if acc is None else acc * rescale + chunk_out
    return new_max, running_sum, acc


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

    Numerically the same as :func:`attend` (up to float rounding), but the keys and values are produced chunk by
    chunk by ``key_values(start, end)`` and folded into a running softmax (running max, running sum and
    weighted-value accumulator per query), so peak memory is ``O(M × chunk_size)`` rather than ``O(M × N)``.

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
            returns zeros, as in :func:`attend`.
        dropout_p: dropout on the attention weights (pass 0 outside training). Each weight is dropped
            independently with probability ``dropout_p`` and the rest scaled by ``1 / (1 - dropout_p)``, as in
            :func:`attend`; the random masks differ from the unchunked path's.
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
        mask = _expand_mask(mask)
    state_dtype = torch.promote_types(q.dtype, torch.float32)
    # Scale the queries once instead of every chunk's scores.
    q = q * (q.shape[-1] ** -0.5 if scale is None else scale)
    running_max = q.new_full((*q.shape[:-1], 1), float("-inf"), dtype=state_dtype)
    running_sum = q.new_zeros((*q.shape[:-1], 1), dtype=state_dtype)
    acc: Tensor | None = None

    def step(
        running_max: Tensor, running_sum: Tensor, acc: Tensor | None, start: int, end: int
    ) -> tuple[Tensor, Tensor, Tensor]:
        k, v = key_values(start, end)
        chunk_mask = None if mask is None else mask[..., start:end]
        return _fold_chunk(q, k, v, chunk_mask, running_max, running_sum, acc, dropout_p)

    for start in range(0, num_keys, chunk_size):
        end = min(start + chunk_size, num_keys)
        if checkpoint_chunks:
            # Saving the RNG state costs a copy per chunk; only dropout needs it to redraw the same masks.
            running_max, running_sum, acc = checkpoint(
                step, running_max, running_sum, acc, start, end,
                use_reentrant=False, preserve_rng_state=dropout_p > 0.0,
            )
        else:
            running_max, running_sum, acc = step(running_max, running_sum, acc, start, end)
    assert acc is not None  # num_keys >= 1, so the loop ran
    # Queries without any valid key have running_sum == 0 and acc == 0: divide by 1 to return exact zeros.
    out = acc / torch.where(running_sum > 0, running_sum, torch.ones_like(running_sum))
    return out.to(q.dtype)


#: One run of keys for :func:`attend_segments`: the queries mapped into this run's key space ``(B, H, M, D_s)``
#: (unscaled), its keys ``(B, H, N_s, D_s)`` and values ``(B, H, N_s, W_s)``, and a map ``(H, W_s, Dv)`` of the
#: weighted values into the output channels (``None`` when ``W_s`` is already ``Dv``).
KeySegment = tuple[Tensor, Tensor, Tensor, Tensor | None]


def attend_segments(segments: list[KeySegment], mask: Tensor | None = None, dropout_p: float = 0.0,
                    scale: float = 1.0) -> Tensor:
    """Attention over keys that come in consecutive runs, each scored by its own queries and with its own value
    width, under one softmax over all of them.

    The result equals :func:`attend` on the concatenated keys when every run's ``q_s·k_sᵀ`` are the scores of
    the same queries against its keys and ``v_s·map_s`` its values (up to float rounding): the runs are folded
    into one online softmax (running max and sum, as in :func:`attend_chunked`). ``mask`` ``(B, N)`` or
    ``(B, M, N)`` covers all runs in order; queries with no valid key return zeros, as in :func:`attend`.
    ``scale`` multiplies every score. Returns the context ``(B, H, M, Dv)`` in the first queries' dtype.
    Queries are taken in blocks so that at most :data:`SCORE_BLOCK_ELEMENTS` scores exist at a time (they are
    float32 here, whatever the compute dtype).
    """
    if not segments:
        raise ValueError("attend_segments needs at least one run of keys")
    num_keys = sum(k.shape[-2] for _, k, _, _ in segments)
    if mask is not None:
        if mask.shape[-1] != num_keys:
            raise ValueError(f"mask must have {num_keys} keys in its last dimension, got shape {tuple(mask.shape)}")
        mask = _expand_mask(mask)
    first = segments[0][0]
    batch, heads, num_queries, _ = first.shape
    block = _query_block(num_queries, batch * heads * num_keys)
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
    state_dtype = torch.promote_types(first.dtype, torch.float32)
    running_max = first.new_full((*first.shape[:-1], 1), float("-inf"), dtype=state_dtype)
    running_sum = first.new_zeros((*first.shape[:-1], 1), dtype=state_dtype)
    acc: Tensor | None = None
    start = 0
    for q, k, v, value_map in segments:
        end = start + k.shape[-2]
        run_mask = None if mask is None else mask[..., start:end]
        running_max, running_sum, acc = _fold_chunk(q * scale, k, v, run_mask, running_max, running_sum, acc,
                                                    dropout_p, value_map)
        start = end
    assert acc is not None
    out = acc / torch.where(running_sum > 0, running_sum, torch.ones_like(running_sum))
    return out.to(first.dtype)
