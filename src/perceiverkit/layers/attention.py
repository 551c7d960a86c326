"""Multi-head attention with separate query/key and value widths.

Perceiver IO attends between arrays of different widths (latents vs. inputs vs. output queries), so the
query/key projection width and the value width are independent of each other and of the input widths.
Attention goes through :func:`torch.nn.functional.scaled_dot_product_attention` so that the fused flash /
cuDNN kernels run on GPU, except where an explicit ``softmax(q·kᵀ)·v`` is faster: on CUDA for heads wider than
the fused kernels' 256 channels (the single-head cross-attentions of the vision, flow and multimodal models:
322, 512, 704 or 1024 wide). There PyTorch falls back to its memory-efficient kernel or, for widths that are not
a multiple of 8, to an unfused path; on an H100 (bf16, PyTorch 2.11, ``benchmarks/gpu_probe.py``) the explicit
path was 1.2–4× faster on every such shape (vision-learned encoder 46 → 11 ms, flow decoder 49 → 20 ms). It
runs over blocks of queries so that the scores never exceed :data:`SCORE_BLOCK_ELEMENTS` elements at a time.
It also serves callers that ask for the attention weights.

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
from torch import Tensor, nn
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
    take (see the module docstring for the measurements)."""
    return q.is_cuda and max(q.shape[-1], v.shape[-1]) > FUSED_MAX_HEAD_WIDTH


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
    """
    if not segments:
        raise ValueError("attend_segments needs at least one run of keys")
    num_keys = sum(k.shape[-2] for _, k, _, _ in segments)
    if mask is not None:
        if mask.shape[-1] != num_keys:
            raise ValueError(f"mask must have {num_keys} keys in its last dimension, got shape {tuple(mask.shape)}")
        mask = _expand_mask(mask)
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
