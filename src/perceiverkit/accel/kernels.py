"""Kernel choice: which computation of :func:`~perceiverkit.layers.attention.attend`'s result is fastest.

Taken by every :class:`~perceiverkit.layers.attention.MultiHeadAttention` while fast paths are on (this module
installs :func:`module_attend` with :func:`~perceiverkit.layers.attention.install_attention_kernel` when it is
imported, which ``import perceiverkit`` does). The reference runs
:func:`~torch.nn.functional.scaled_dot_product_attention` (SDPA); the explicit ``softmax(q·kᵀ)·v`` over blocks of
queries (:func:`attend_explicit`) is taken instead where it is faster (:func:`prefers_explicit`):

- on CUDA, for heads wider than the fused flash / cuDNN kernels take (:data:`FUSED_MAX_HEAD_WIDTH`): the
  single-head cross-attentions of the vision, flow and multimodal models. There SDPA falls back to its
  memory-efficient kernel or, for widths that are not a multiple of 8, to an unfused path;
- on the CPU, in eager code, where the query/key and value heads differ in width (the language model's 32 and
  160): PyTorch's CPU flash kernel needs one width, so SDPA falls back to its math path, the same
  matmul-softmax-matmul with more bookkeeping.

Measurements behind both rules are in docs/benchmarks.md. The explicit path never holds more than
:data:`SCORE_BLOCK_ELEMENTS` scores at a time. :func:`set_attention_kernel` pins one kernel per module, for
benchmarks and for tests that compare eager and compiled code.
"""

from __future__ import annotations

import typing
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.attention import MultiHeadAttention, attend, install_attention_kernel, masked_softmax, softmax_mask
from .switch import fast_paths_enabled, on_switch

#: Widest head the fused flash / cuDNN kernels take; wider heads use the explicit path on CUDA.
FUSED_MAX_HEAD_WIDTH = 256
#: Largest ``batch × heads × queries × keys`` score block the explicit path materialises at once (2³⁰ elements:
#: 2 GiB in bf16); more queries are split into equal blocks (large blocks keep the matmuls efficient).
SCORE_BLOCK_ELEMENTS = 1 << 30
#: ``auto``: :func:`prefers_explicit` decides; ``fused``: always SDPA; ``explicit``: always the explicit path.
AttentionKernel = Literal["auto", "fused", "explicit"]
ATTENTION_KERNELS: tuple[str, ...] = typing.get_args(AttentionKernel)


def prefers_explicit(q: Tensor, v: Tensor) -> bool:
    """Whether ``kernel="auto"`` takes the explicit path: CUDA tensors with a head wider than the fused kernels
    take, and (outside compiled or exported graphs) CPU tensors whose query/key and value heads differ in width,
    which the CPU flash kernel does not take."""
    if q.is_cuda:
        return max(q.shape[-1], v.shape[-1]) > FUSED_MAX_HEAD_WIDTH
    # Eager only: a compiled or exported graph keeps the one SDPA node (the compiler lowers it as it sees fit, and
    # the explicit path's query blocks would put guards on a dynamic sequence length).
    return q.device.type == "cpu" and q.shape[-1] != v.shape[-1] and not torch.compiler.is_compiling()


def query_block(num_queries: int, scores_per_query: int) -> int:
    """Queries per block: equal blocks, as few as keep each under :data:`SCORE_BLOCK_ELEMENTS` scores."""
    blocks = max(1, -(-num_queries * scores_per_query // SCORE_BLOCK_ELEMENTS))
    return max(1, -(-num_queries // blocks))


def attend_explicit(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, dropout_p: float = 0.0,
                    scale: float | None = None) -> Tensor:
    """:func:`~perceiverkit.layers.attention.attend`'s context ``(B, H, M, Dv)`` as ``softmax(scale·q·kᵀ)·v``
    over blocks of queries, at most :data:`SCORE_BLOCK_ELEMENTS` scores at a time."""
    mask, has_key = softmax_mask(mask)  # (B, 1, M|1, N), (B, 1, M|1, 1)
    q = q * (q.shape[-1] ** -0.5 if scale is None else scale)  # scaling the queries is cheaper than the scores
    num_queries = q.shape[-2]
    block = query_block(num_queries, k.shape[0] * k.shape[1] * k.shape[2])
    outs = []
    for start in range(0, num_queries or 1, block):  # (no queries: one empty block)
        scores = torch.matmul(q[..., start:start + block, :], k.transpose(-1, -2))  # (B, H, block, N)
        rows = mask if mask is None or mask.shape[-2] == 1 else mask[..., start:start + block, :]
        weights = masked_softmax(scores, rows)
        outs.append(torch.matmul(F.dropout(weights, p=dropout_p) if dropout_p > 0.0 else weights, v))
    out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-2)
    return out if has_key is None else out * has_key.to(out.dtype)


def attend_with_kernel(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    dropout_p: float = 0.0,
    need_weights: bool = False,
    kernel: AttentionKernel = "auto",
    scale: float | None = None,
) -> tuple[Tensor, Tensor | None]:
    """:func:`~perceiverkit.layers.attention.attend` computed by ``kernel`` (see :data:`AttentionKernel`); calls
    that ask for the weights always take the reference, which forms them."""
    if kernel not in ATTENTION_KERNELS:
        raise ValueError(f"kernel must be one of {list(ATTENTION_KERNELS)}, got {kernel!r}")
    if not need_weights and (kernel == "explicit" or (kernel == "auto" and prefers_explicit(q, v))):
        return attend_explicit(q, k, v, mask, dropout_p, scale), None
    return attend(q, k, v, mask, dropout_p, need_weights, scale)


def module_attend(module: MultiHeadAttention, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None,
                  dropout_p: float, need_weights: bool) -> tuple[Tensor, Tensor | None]:
    """What every :class:`MultiHeadAttention` calls to attend: the module's kernel (:func:`set_attention_kernel`;
    ``auto`` unless set) while fast paths are on, else the reference."""
    if not fast_paths_enabled():
        return attend(q, k, v, mask, dropout_p, need_weights)
    return attend_with_kernel(q, k, v, mask, dropout_p, need_weights, getattr(module, "kernel", "auto"))


def set_attention_kernel(model: nn.Module, kernel: AttentionKernel, self_attention_only: bool = False) -> int:
    """Make every :class:`MultiHeadAttention` in ``model`` (only the self-attentions, if asked) use ``kernel``;
    returns how many modules were set.

    Raises:
        ValueError: for an unknown kernel name.
    """
    if kernel not in ATTENTION_KERNELS:
        raise ValueError(f"attention kernel must be one of {list(ATTENTION_KERNELS)}, got {kernel!r}")
    modules = [m for m in model.modules() if isinstance(m, MultiHeadAttention)
               and (m.is_self_attention or not self_attention_only)]
    for module in modules:
        module.kernel = kernel  # type: ignore[assignment]  # a plain attribute, read by module_attend
    return len(modules)


on_switch(lambda enabled: install_attention_kernel(module_attend if enabled else None))
