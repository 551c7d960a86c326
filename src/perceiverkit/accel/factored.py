"""Factored inputs: cross-attention to narrow features plus shared positions, without projecting the inputs.

Taken by the encoder's cross-attention when its inputs come as :class:`FactoredInputs` (image-like inputs: the
preprocessor keeps ``[features, positions]`` apart) and :func:`factored_is_cheaper` says the basis space needs
fewer multiply-adds than projecting the inputs; chunked (:mod:`.chunked`) when the encoder's ``input_chunk_size``
is set and exceeded.

Image-like inputs are ``x = [f, p]``: per-example features ``f`` (often a linear map ``f = r·Wᵀ + b`` of a few raw
channels, e.g. a 1×1 convolution of 3 colour channels) concatenated with a position encoding ``p`` that is the same
for every example. The reference cross-attention layer-norms ``x`` and projects it to keys and values,
``kv = LN(x)·Wₖᵥ + bₖᵥ``: a ``C × (D + Dᵥ)`` matmul per input, followed by attention at width ``D`` and ``Dᵥ``.

Because LayerNorm is an affine map of ``x`` with a per-row shift ``μ`` and scale ``1/σ``, every key and value is
one fixed matrix applied to a narrow per-input *basis* vector:

    LN(x)·Wₖᵥ + bₖᵥ = [r/σ, p/σ, 1/σ, −μ/σ, 1] · Mₖᵥ

where ``Mₖᵥ`` (:func:`layer_norm_linear_mixing`) folds the feature map, the LayerNorm's ``γ, β`` and the projection
together. So attention can run in the basis space (:func:`low_rank_cross_attention`): queries ``q·Mₖᵀ`` score the
basis vectors directly, the weighted sum of basis vectors is mapped by ``Mᵥ`` afterwards, and the keys and values
are never formed. The result is the same up to float rounding, including masks, dropout and the attention
weights; it pays off when the basis (``Cᵣ + Cₚ + 3`` wide) is much narrower than the projections it replaces.

Channels that are the same for every input (a multimodal model's padding vector, :attr:`FactoredInputs.constant`)
widen no basis. Several modalities, each with a basis of its own, are :class:`~.segmented.SegmentedInputs`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.attention import MultiHeadAttention
from ..layers.blocks import CrossAttentionBlock
from .chunked import attend_chunked
from .kernels import attend_with_kernel

#: Basis channels beyond the raw features and positions: ``1/σ``, ``−μ/σ`` and the constant 1.
EXTRA_BASIS_CHANNELS = 3
#: On CUDA the basis is zero-padded to a multiple of this many channels: cuBLAS runs bf16/fp16 products whose
#: inner width is not a multiple of 8 with slow unaligned kernels (see docs/benchmarks.md).
CUDA_WIDTH_MULTIPLE = 8


def aligned_basis_width(width: int, device: torch.device) -> int:
    """``width`` rounded up to :data:`CUDA_WIDTH_MULTIPLE` on CUDA; unchanged elsewhere (the zero channels cost
    FLOPs and buy nothing on a CPU)."""
    if device.type != "cuda":
        return width
    return -(-width // CUDA_WIDTH_MULTIPLE) * CUDA_WIDTH_MULTIPLE


def _check_width(width: int | None, inputs: FactoredInputs) -> int:
    if width is None:
        return inputs.basis_width
    if width < inputs.basis_width:
        raise ValueError(f"basis width {width} is narrower than the inputs' {inputs.basis_width} basis channels")
    return width


@dataclass
class FactoredInputs:
    """Inputs ``(B, N, Cf + Cp + Cc)`` kept as ``[features, positions, constant]`` along channels.

    Attributes:
        raw: ``(B, N, Cr)`` per-example raw features.
        positions: ``(B | 1, N, Cp)`` position features, typically the same for every example.
        weight: ``(Cf, Cr)``: when given, the features are ``raw·weightᵀ + bias`` (as :class:`torch.nn.Linear`);
            when ``None`` they are ``raw`` itself.
        bias: ``(Cf,)`` or ``None``.
        constant: ``(Cc,)`` channels appended to every input, or ``None`` (a multimodal model pads each
            modality to a common width with a learned vector). They widen no basis: their share of every key
            and value folds into the ``1/σ`` channel.
    """

    raw: Tensor
    positions: Tensor
    weight: Tensor | None = None
    bias: Tensor | None = None
    constant: Tensor | None = None

    def __post_init__(self) -> None:
        if self.raw.dim() != 3 or self.positions.dim() != 3:
            raise ValueError(f"raw features and positions must be 3-D (batch, index, channels), got "
                             f"{tuple(self.raw.shape)} and {tuple(self.positions.shape)}")
        if self.positions.shape[1] != self.raw.shape[1] or self.positions.shape[0] not in (1, self.raw.shape[0]):
            raise ValueError(f"positions {tuple(self.positions.shape)} do not match raw features "
                             f"{tuple(self.raw.shape)}: expected (1 or {self.raw.shape[0]}, {self.raw.shape[1]}, C)")
        if self.weight is not None and (self.weight.dim() != 2 or self.weight.shape[1] != self.raw.shape[2]):
            raise ValueError(f"weight must have shape (features, {self.raw.shape[2]}), got {tuple(self.weight.shape)}")
        if self.bias is not None and (self.weight is None or tuple(self.bias.shape) != (self.weight.shape[0],)):
            raise ValueError("bias needs a weight, and must have one entry per feature channel")
        if self.constant is not None and self.constant.dim() != 1:
            raise ValueError(f"constant channels must be 1-D, got shape {tuple(self.constant.shape)}")

    @property
    def constant_channels(self) -> int:
        return 0 if self.constant is None else self.constant.shape[0]

    @property
    def feature_channels(self) -> int:
        return self.raw.shape[2] if self.weight is None else self.weight.shape[0]

    @property
    def shape(self) -> torch.Size:
        """The shape ``(B, N, Cf + Cp + Cc)`` of the concatenated inputs."""
        batch, length, _ = self.raw.shape
        return torch.Size((batch, length, self.feature_channels + self.positions.shape[2] + self.constant_channels))

    @property
    def dtype(self) -> torch.dtype:
        return self.raw.dtype

    @property
    def device(self) -> torch.device:
        return self.raw.device

    @property
    def basis_width(self) -> int:
        """Width of the basis vectors that keys and values are a linear map of."""
        return self.raw.shape[2] + self.positions.shape[2] + EXTRA_BASIS_CHANNELS

    def features(self) -> Tensor:
        return self.raw if self.weight is None else F.linear(self.raw, self.weight, self.bias)

    def materialize(self) -> Tensor:
        """The concatenated ``(B, N, Cf + Cp + Cc)`` inputs."""
        features = self.features()
        batch, length, _ = features.shape
        parts = [features, self.positions.to(features.dtype).expand(batch, -1, -1)]
        if self.constant is not None:
            parts.append(self.constant.to(features.dtype).expand(batch, length, -1))
        return torch.cat(parts, dim=-1)

    def narrow(self, start: int, end: int) -> FactoredInputs:
        """Inputs ``start:end`` along the index axis."""
        return FactoredInputs(self.raw[:, start:end], self.positions[:, start:end], self.weight, self.bias,
                              self.constant)


def _compute_dtype(inputs: FactoredInputs) -> torch.dtype:
    """At least float32: the statistics and the folded weights lose too much in half precision."""
    return torch.promote_types(inputs.dtype, torch.float32)


def _as(t: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    return None if t is None else t.to(dtype)


def layer_norm_basis(inputs: FactoredInputs, eps: float, width: int | None = None) -> Tensor:
    """The basis ``[r/σ, p/σ, 1/σ, −μ/σ, 1]`` ``(B, N, basis_width)`` of ``LayerNorm(eps)`` applied to the inputs.

    ``μ`` and ``σ² + eps`` are LayerNorm's statistics of each concatenated input row, computed in at least float32
    from the raw features (for mapped features, from their sum and Gram form, without forming them). The basis
    is returned in the inputs' dtype, or, for float32 inputs under autocast, in autocast's dtype: only matrix
    products read it, and autocast would round it to that dtype for each of them anyway. A ``width`` above
    ``basis_width`` appends zero channels (see :func:`aligned_basis_width`); give :func:`layer_norm_linear_mixing`
    the same width.
    """
    padding = _check_width(width, inputs) - inputs.basis_width
    dtype = _compute_dtype(inputs)
    device_type = inputs.device.type
    out = inputs.dtype
    if out == torch.float32 and torch.is_autocast_enabled(device_type):
        out = torch.get_autocast_dtype(device_type)
    with torch.autocast(device_type, enabled=False):
        raw, pos = inputs.raw.to(dtype), inputs.positions.to(dtype)
        weight, bias = _as(inputs.weight, dtype), _as(inputs.bias, dtype)
        if weight is None:
            feature_sum, feature_sq = raw.sum(-1), raw.square().sum(-1)
        else:
            # f = r·Wᵀ + b: Σf = r·(Σ rows of W) + Σb, |f|² = r·WᵀW·rᵀ + 2 r·Wᵀb + |b|².
            feature_sum = raw @ weight.sum(0)
            feature_sq = ((raw @ (weight.T @ weight)) * raw).sum(-1)
            if bias is not None:
                feature_sum = feature_sum + bias.sum()
                feature_sq = feature_sq + 2 * (raw @ (weight.T @ bias)) + bias.square().sum()
        if inputs.constant is not None:
            constant = inputs.constant.to(dtype)
            feature_sum, feature_sq = feature_sum + constant.sum(), feature_sq + constant.square().sum()
        channels = inputs.shape[2]
        mean = (feature_sum + pos.sum(-1)) / channels
        var = ((feature_sq + pos.square().sum(-1)) / channels - mean.square()).clamp_min(0.0)
        inv_std = torch.rsqrt(var + eps).unsqueeze(-1)
        batch = raw.shape[0]
        # Each piece is rounded to the output dtype before the concatenation, so that a compiled graph writes the
        # (B, N, W) basis once in that dtype instead of forming it in float32 and converting it (on CUDA that
        # round trip was the largest elementwise kernel of the learned-position ImageNet model).
        basis = torch.cat([
            (raw * inv_std).to(out),
            (pos * inv_std).to(out).expand(batch, -1, -1),
            inv_std.to(out),
            (-mean.unsqueeze(-1) * inv_std).to(out),
            torch.ones_like(inv_std, dtype=out),
            *([inv_std.new_zeros((), dtype=out).expand(batch, raw.shape[1], padding)] if padding else []),
        ], dim=-1)
    return basis


def layer_norm_linear_mixing(inputs: FactoredInputs, norm: nn.LayerNorm, linear: nn.Linear,
                             width: int | None = None) -> Tensor:
    """``M`` ``(basis_width, linear.out_features)`` with ``layer_norm_basis(inputs) @ M == linear(norm(x))`` for
    the concatenated inputs ``x``; computed in at least float32, returned in the inputs' dtype. A ``width`` above
    ``basis_width`` appends zero rows, matching the zero channels of ``layer_norm_basis(inputs, eps, width)``."""
    padding = _check_width(width, inputs) - inputs.basis_width
    channels = inputs.shape[2]
    if tuple(norm.normalized_shape) != (channels,) or linear.in_features != channels:
        raise ValueError(f"LayerNorm {tuple(norm.normalized_shape)} and Linear ({linear.in_features} in) must both "
                         f"take the {channels}-channel inputs")
    dtype = _compute_dtype(inputs)
    with torch.autocast(inputs.device.type, enabled=False):
        projection = linear.weight.to(dtype).T  # (C, out)
        gamma, beta = _as(norm.weight, dtype), _as(norm.bias, dtype)
        scaled = projection if gamma is None else gamma[:, None] * projection
        features, positions, constant_rows = scaled.split(
            [inputs.feature_channels, inputs.positions.shape[2], inputs.constant_channels])
        weight, bias = _as(inputs.weight, dtype), _as(inputs.bias, dtype)
        raw_rows = features if weight is None else weight.T @ features
        # Whatever is the same for every input (the features' bias, constant channels) is scaled by 1/σ.
        inv_std_row = features.new_zeros(features.shape[1]) if bias is None else bias @ features
        if inputs.constant is not None:
            inv_std_row = inv_std_row + inputs.constant.to(dtype) @ constant_rows
        constant = beta @ projection if beta is not None else projection.new_zeros(projection.shape[1])
        if linear.bias is not None:
            constant = constant + linear.bias.to(dtype)
        mixing = torch.cat([raw_rows, positions, inv_std_row[None], scaled.sum(0)[None], constant[None],
                            projection.new_zeros(padding, projection.shape[1])])
    return mixing.to(inputs.dtype)


def factored_is_cheaper(inputs: FactoredInputs, num_queries: int, num_heads: int, qk_channels: int,
                        v_channels: int) -> bool:
    """Whether attending in the basis space takes fewer multiply-adds per input than projecting the inputs.

    Projected: ``C·(D + Dᵥ)`` for the keys/values plus ``M·(D + Dᵥ)`` for scores and weighted sum. Factored:
    ``M·basis_width`` per head for each of the two.
    """
    width = qk_channels + v_channels
    projected = inputs.shape[2] * width + num_queries * width
    factored = 2 * num_heads * num_queries * inputs.basis_width
    return factored < projected


def basis_maps(attention: MultiHeadAttention, mixing: Tensor) -> tuple[Tensor, Tensor]:
    """Per head, the ``(H, D, W)`` query-side and ``(H, W, Dv)`` value-side maps of a basis' mixing matrix
    ``(W, qk_channels + v_channels)``."""
    heads, qk, v_channels = attention.num_heads, attention.qk_channels, attention.v_channels
    if mixing.dim() != 2 or mixing.shape[1] != qk + v_channels:
        raise ValueError(f"mixing must have shape (basis width, {qk + v_channels}), got {tuple(mixing.shape)}")
    width = mixing.shape[0]
    key_map = mixing[:, :qk].reshape(width, heads, qk // heads).permute(1, 2, 0)
    value_map = mixing[:, qk:].reshape(width, heads, v_channels // heads).transpose(0, 1)
    return key_map, value_map


def low_rank_cross_attention(
    attention: MultiHeadAttention,
    queries: Tensor,
    basis: Callable[[int, int], Tensor],
    num_inputs: int,
    mixing: Tensor,
    mask: Tensor | None = None,
    need_weights: bool = False,
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor | None]:
    """``attention(queries, inputs, mask, need_weights)`` for inputs whose projected keys/values are
    ``basis(0, N) @ mixing`` (what ``kv_proj(inputs)`` gives), computed without forming the keys and values.

    Scores are ``(q·Mₖᵀ)·bᵀ`` and the context ``(Σ weights·b)·Mᵥ``, so the ``num_inputs``-long work runs at the
    basis width instead of the projections'. ``basis(start, end)`` returns the ``(B, end - start, W)`` basis
    vectors of inputs ``start:end``; with ``chunk_size`` (and no weights asked for) it is called once per chunk
    and attention runs with an online softmax (:func:`~.chunked.attend_chunked`).
    """
    if attention.is_self_attention:
        raise ValueError("low-rank attention is for cross-attention; this is self-attention")
    heads = attention.num_heads
    key_map, value_map = basis_maps(attention, mixing)  # (H, D, W), (H, W, Dv / H)
    q = attention.split_heads(attention.q_proj(queries))  # (B, H, M, D)
    q_basis = torch.matmul(q, key_map.to(q.dtype))  # (B, H, M, W)
    scale = (attention.qk_channels // heads) ** -0.5  # the scale of the projected width, not the basis width

    def heads_view(b: Tensor) -> Tensor:
        # Keys and values are the same basis vectors, shared by all heads: (B, N, W) -> (B, H, N, W).
        return b.unsqueeze(1).expand(-1, heads, -1, -1)

    dropout_p = attention.dropout if attention.training else 0.0
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
        context, weights = attend_with_kernel(q_basis, keys, keys, mask, dropout_p, need_weights,
                                              getattr(attention, "kernel", "auto"), scale)
    out = torch.matmul(context, value_map.to(context.dtype))  # (B, H, M, Dv / H)
    return attention.merge_heads_and_project(out), weights


def factored_cross_attention(block: CrossAttentionBlock, queries: Tensor, inputs: FactoredInputs,
                             mask: Tensor | None, need_weights: bool, chunk_size: int | None
                             ) -> tuple[Tensor, Tensor | None]:
    """The attention part of ``block(queries, inputs.materialize(), mask, need_weights)``, in the inputs' basis."""
    eps = block.norm_kv.eps
    width = aligned_basis_width(inputs.basis_width, inputs.device)
    mixing = layer_norm_linear_mixing(inputs, block.norm_kv, block.attention.kv_proj, width)

    def basis(start: int, end: int) -> Tensor:  # (B, end - start, width)
        return layer_norm_basis(inputs.narrow(start, end), eps, width)

    return low_rank_cross_attention(block.attention, block.norm_q(queries), basis, inputs.shape[1], mixing, mask,
                                    need_weights, chunk_size)
