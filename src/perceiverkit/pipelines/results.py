"""What pipelines return, under Transformers' names: ``score``, ``label``, ``token``, ``token_str``, ``sequence``.

Results are plain dicts, as Transformers' pipelines return, so code written for ``transformers.pipeline`` reads
them unchanged; the ``TypedDict`` classes below only name their keys for type checkers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import torch


class ClassificationResult(TypedDict):
    """One ranked class of an image or a text."""

    label: str
    score: float


class FillMaskResult(TypedDict):
    """One candidate for one ``[MASK]``: its ``score``, id and text, and the whole text with it filled in."""

    score: float
    token: int
    token_str: str
    sequence: str


def label_names(labels: Sequence[str] | None, num_labels: int) -> tuple[str, ...]:
    """The model's class names, or Transformers' ``LABEL_i`` where it has none."""
    return tuple(labels) if labels else tuple(f"LABEL_{i}" for i in range(num_labels))


def top_labels(scores: torch.Tensor, names: Sequence[str], top_k: int) -> list[list[ClassificationResult]]:
    """The ``top_k`` best classes of each row of ``scores`` ``(B, num_labels)``, best first."""
    top = scores.float().topk(min(top_k, scores.shape[-1]), dim=-1)
    return [[ClassificationResult(label=names[i], score=s) for s, i in zip(values, indices, strict=True)]
            for values, indices in zip(top.values.tolist(), top.indices.tolist(), strict=True)]


def check_top_k(top_k: int) -> int:
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    return top_k


def check_batch_size(batch_size: int) -> int:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size
