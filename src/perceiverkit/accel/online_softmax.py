"""The online softmax shared by the chunked and the segmented paths: keys folded in one run at a time.

For each query it keeps a running max ``m``, a running sum ``l`` of ``exp(score − m)`` and a running weighted sum
of values; folding in another run of keys rescales the three by ``exp(m_old − m_new)``. After the last run the
context is the accumulator divided by ``l``: the same as one softmax over all keys, up to float rounding, without
ever holding the scores of all keys at once. Not a path of its own; see :mod:`.chunked` and :mod:`.segmented`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: ``(running_max, running_sum, acc)``: ``(B, H, M, 1)``, ``(B, H, M, 1)`` and ``(B, H, M, Dv)`` (``acc`` is
#: ``None`` before the first run), in at least float32.
SoftmaxState = tuple[Tensor, Tensor, Tensor | None]


def start(q: Tensor) -> SoftmaxState:
    """The state before any key, for queries like ``q`` ``(B, H, M, D)``. It is kept in at least float32 so that
    long sums in half precision don't lose the small terms."""
    dtype = torch.promote_types(q.dtype, torch.float32)
    running_max = q.new_full((*q.shape[:-1], 1), float("-inf"), dtype=dtype)
    return running_max, q.new_zeros((*q.shape[:-1], 1), dtype=dtype), None


def fold(
    state: SoftmaxState,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None,
    dropout_p: float,
    value_map: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Fold the keys ``k`` ``(B, H, N_s, D)`` and values ``v`` ``(B, H, N_s, W)`` of one run into ``state``.

    ``q`` is already scaled. ``mask`` ``(B, 1, M|1, N_s)``: ``True`` = attend. ``value_map`` ``(H, W, Dv)``, when
    given, maps the run's weighted ``W``-wide values into the accumulator's ``Dv`` channels.
    """
    running_max, running_sum, acc = state
    state_dtype = running_max.dtype
    scores = torch.matmul(q, k.transpose(-1, -2)).to(state_dtype)  # (B, H, M, N_s)
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
    run_out = torch.matmul(probs.to(v.dtype), v)  # (B, H, M, W)
    if value_map is not None:
        run_out = torch.matmul(run_out, value_map.to(run_out.dtype))  # (B, H, M, Dv)
    run_out = run_out.to(state_dtype)
    acc = run_out if acc is None else acc * rescale + run_out
    return new_max, running_sum, acc


def finish(state: SoftmaxState, dtype: torch.dtype) -> Tensor:
    """The context ``(B, H, M, Dv)`` in ``dtype``. Queries without any valid key have ``running_sum == 0`` and
    ``acc == 0``: they are divided by 1 and return exact zeros, as in the reference."""
    _, running_sum, acc = state
    if acc is None:
        raise ValueError("the online softmax needs at least one run of keys")
    out = acc / torch.where(running_sum > 0, running_sum, torch.ones_like(running_sum))
    return out.to(dtype)
