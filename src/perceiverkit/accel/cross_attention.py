"""The one place where the encoder's cross-attention leaves the reference path.

:func:`fast_cross_attention` is installed into :class:`~perceiverkit.layers.blocks.CrossAttentionBlock` on import
(so it runs inside the block's own call, where module hooks such as FSDP's see it); :func:`choose_path` says
which path it takes, each under the condition stated in its module:

- ``segmented`` (:mod:`.segmented`): inputs given as :class:`SegmentedInputs`, no weights asked for, no chunk
  size set, and some segment cheaper in its basis;
- ``factored`` (:mod:`.factored`): inputs given as :class:`FactoredInputs` and cheaper in their basis (chunked
  within the basis when a chunk size is set and exceeded);
- ``chunked`` (:mod:`.chunked`): a chunk size set and exceeded, no weights asked for;
- ``reference``: anything else, and everything while :func:`~.switch.use_fast_paths` is off. A factored or
  segmented view is then concatenated into the ``(B, N, C)`` tensor it stands for.

Every path returns what the reference returns, up to float rounding.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from ..layers.blocks import CrossAttentionBlock, InputsView, install_cross_attention_path
from .chunked import chunked_cross_attention
from .factored import FactoredInputs, factored_cross_attention
from .segmented import SegmentedInputs, cheaper_in_basis, segmented_cross_attention
from .switch import fast_paths_enabled, on_switch

#: A faster view of ``(B, N, C)`` inputs that a preprocessor may give besides (or instead of) the tensor itself.
InputView = FactoredInputs | SegmentedInputs
CrossAttentionPath = Literal["reference", "chunked", "factored", "segmented"]


def as_tensor(inputs: Tensor | InputView) -> Tensor:
    """The ``(B, N, C)`` inputs a view stands for (a tensor is returned as it is)."""
    return inputs if isinstance(inputs, Tensor) else inputs.materialize()


def choose_path(block: CrossAttentionBlock, inputs: Tensor | InputView, num_queries: int,
                need_weights: bool = False, chunk_size: int | None = None) -> CrossAttentionPath:
    """Which path :func:`fast_cross_attention` takes for these arguments (see the module docstring)."""
    if not fast_paths_enabled():
        return "reference"
    if isinstance(inputs, SegmentedInputs):
        if not need_weights and chunk_size is None and any(
                cheaper_in_basis(block, segment, num_queries) for segment in inputs.segments):
            return "segmented"
    elif cheaper_in_basis(block, inputs, num_queries):
        return "factored"
    if chunk_size is not None and not need_weights and inputs.shape[1] > chunk_size:
        return "chunked"
    return "reference"


def fast_cross_attention(
    block: CrossAttentionBlock,
    queries: Tensor,
    inputs: Tensor | InputsView,
    mask: Tensor | None = None,
    need_weights: bool = False,
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor | None] | None:
    """The block's result by the path :func:`choose_path` picks, or ``None`` where that is the reference.

    Queries ``(B, M, q_dim)``, inputs ``(B, N, kv_dim)`` (or a view of them), ``mask`` ``(B, N)``; returns the
    block's output ``(B, M, q_dim)`` and, if requested, the attention weights ``(B, H, M, N)``.
    """
    if not isinstance(inputs, (Tensor, FactoredInputs, SegmentedInputs)):
        return None  # a view from outside this package: the reference materializes it
    path = choose_path(block, inputs, queries.shape[1], need_weights, chunk_size)
    weights: Tensor | None = None
    if path == "segmented":
        assert isinstance(inputs, SegmentedInputs)
        attended = segmented_cross_attention(block, queries, inputs, mask)
    elif path == "factored":
        assert isinstance(inputs, FactoredInputs)
        attended, weights = factored_cross_attention(block, queries, inputs, mask, need_weights, chunk_size)
    elif path == "chunked":
        assert chunk_size is not None
        attended = chunked_cross_attention(block.attention, block.norm_q(queries), as_tensor(inputs), chunk_size,
                                           mask, input_transform=block.norm_kv)
    else:
        return None
    return block.residual_and_mlp(queries, attended), weights


on_switch(lambda enabled: install_cross_attention_path(fast_cross_attention if enabled else None))

