"""Pre-LayerNorm residual attention blocks: the two building blocks of every Perceiver IO model.

A block is ``x ← x + Attention(LN(x)); x ← x + MLP(LN(x))``. The cross-attention block normalises queries and
keys/values separately and can drop the first residual (``use_query_residual=False``), which decoders use when
their queries are only positions and carry no content worth keeping.
"""

from __future__ import annotations

from torch import Tensor, nn

from .attention import MultiHeadAttention
from .attention_ops import check_chunk_size
from .factored import (FactoredInputs, SegmentedInputs, aligned_basis_width, factored_is_cheaper,
                       layer_norm_basis, layer_norm_linear_mixing)
from .mlp import MLP


class CrossAttentionBlock(nn.Module):
    """Queries ``(B, M, q_dim)`` attend to inputs ``(B, N, kv_dim)``; output has the queries' shape.

    Set :attr:`input_chunk_size` to attend to long inputs chunk by chunk (same result, bounded memory). Inputs
    given as :class:`~perceiverkit.layers.factored.FactoredInputs` are attended to in their basis space when that
    is cheaper (:attr:`factored_attention`); :class:`~perceiverkit.layers.factored.SegmentedInputs` (several
    modalities) likewise, each factored segment in its own basis, unless the attention weights are asked for or
    :attr:`input_chunk_size` is set (then they are concatenated and projected).
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
        self._input_chunk_size: int | None = None
        #: Attend to :class:`FactoredInputs` without projecting them, where that needs fewer FLOPs (same result up
        #: to float rounding). ``False`` always concatenates and projects them, as Transformers does.
        self.factored_attention = True

    @property
    def input_chunk_size(self) -> int | None:
        """Attend to at most this many inputs at a time (``None``: all at once, the default).

        A runtime setting, not part of the architecture: the output is the same up to float rounding, but when
        ``N`` exceeds it the inputs are layer-normed, projected to keys/values and attended to one chunk at a time
        with an online softmax, so memory is ``O(M × chunk)`` instead of ``O(M × N)``; with gradients, each chunk
        is recomputed in the backward pass. Calls that ask for the attention weights take the unchunked path
        (the weights themselves are ``M × N``). Attention dropout is applied in training as usual, with
        different random masks from the unchunked path.
        """
        return self._input_chunk_size

    @input_chunk_size.setter
    def input_chunk_size(self, value: int | None) -> None:
        self._input_chunk_size = check_chunk_size(value, "input_chunk_size")

    def _cheaper_factored(self, inputs: Tensor | FactoredInputs, num_queries: int) -> bool:
        attention = self.attention
        return (isinstance(inputs, FactoredInputs)
                and factored_is_cheaper(inputs, num_queries, attention.num_heads, attention.qk_channels,
                                        attention.v_channels))

    def uses_factored_path(self, inputs: Tensor | FactoredInputs | SegmentedInputs, num_queries: int,
                           need_weights: bool = False) -> bool:
        """Whether :meth:`forward` attends to ``inputs`` (or, for segmented inputs, to some segment of them) in
        their basis space rather than projecting them."""
        if not self.factored_attention:
            return False
        if isinstance(inputs, SegmentedInputs):
            return (not need_weights and self._input_chunk_size is None
                    and any(self._cheaper_factored(s, num_queries) for s in inputs.segments))
        return self._cheaper_factored(inputs, num_queries)

    def _attend_segments(self, queries: Tensor, inputs: SegmentedInputs, mask: Tensor | None) -> Tensor:
        """Each segment in its own basis where that is cheaper, else layer-normed for projection; one softmax."""
        runs: list[tuple[Tensor, Tensor | None]] = []
        for segment in inputs.segments:
            if self._cheaper_factored(segment, queries.shape[1]):
                assert isinstance(segment, FactoredInputs)
                width = aligned_basis_width(segment.basis_width, segment.device)
                runs.append((layer_norm_basis(segment, self.norm_kv.eps, width),
                             layer_norm_linear_mixing(segment, self.norm_kv, self.attention.kv_proj, width)))
            else:
                plain = segment.materialize() if isinstance(segment, FactoredInputs) else segment
                runs.append((self.norm_kv(plain), None))
        return self.attention.forward_segments(self.norm_q(queries), runs, mask)

    def forward(
        self,
        queries: Tensor,
        inputs: Tensor | FactoredInputs | SegmentedInputs,
        mask: Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """``mask`` marks the valid inputs (``True`` = attend), shape ``(B, N)``."""
        weights: Tensor | None
        if isinstance(inputs, SegmentedInputs) and self.uses_factored_path(inputs, queries.shape[1], need_weights):
            attended, weights = self._attend_segments(queries, inputs, mask), None
        elif isinstance(inputs, FactoredInputs) and self.uses_factored_path(inputs, queries.shape[1]):
            factored, eps = inputs, self.norm_kv.eps
            width = aligned_basis_width(factored.basis_width, factored.device)
            mixing = layer_norm_linear_mixing(factored, self.norm_kv, self.attention.kv_proj, width)
            attended, weights = self.attention.forward_low_rank(
                self.norm_q(queries), lambda start, end: layer_norm_basis(factored.narrow(start, end), eps, width),
                factored.shape[1], mixing, mask, need_weights, self._input_chunk_size)
        else:
            if isinstance(inputs, (FactoredInputs, SegmentedInputs)):
                inputs = inputs.materialize()
            attended, weights = self._attend(queries, inputs, mask, need_weights)
        x = attended + queries if self.use_query_residual else attended
        return x + self.mlp(self.norm_mlp(x)), weights

    def _attend(self, queries: Tensor, inputs: Tensor, mask: Tensor | None, need_weights: bool
                ) -> tuple[Tensor, Tensor | None]:
        """Layer-norm and project the inputs (chunk by chunk past :attr:`input_chunk_size`) and attend to them."""
        chunk = self._input_chunk_size
        if chunk is not None and not need_weights and inputs.shape[1] > chunk:
            attended = self.attention.forward_chunked(
                self.norm_q(queries), inputs, chunk, mask, input_transform=self.norm_kv
            )
            return attended, None
        return self.attention(self.norm_q(queries), self.norm_kv(inputs), mask, need_weights)


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

    def forward(self, x: Tensor, mask: Tensor | None = None, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        attended, weights = self.attention(self.norm(x), mask=mask, need_weights=need_weights)
        x = x + attended
        return x + self.mlp(self.norm_mlp(x)), weights
