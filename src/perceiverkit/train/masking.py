"""Dynamic masking for byte-level masked language modelling.

Each call draws a new mask (so every epoch sees different masks). As in BERT, of the chosen positions 80 %
become ``[MASK]``, 10 % a random byte and 10 % stay unchanged; the loss is taken only at chosen positions.
With ``whole_word=True`` whole words (maximal runs of non-space bytes) are chosen together.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..tokenizer import ByteTokenizer

IGNORE_INDEX = -100


@dataclass
class MaskedBatch:
    """Model inputs, targets (``-100`` where no loss) and the masked positions ``(B, Q)`` for sparse decoding."""

    input_ids: Tensor
    attention_mask: Tensor
    labels: Tensor
    output_points: Tensor


def _word_ids(ids: Tensor, special: Tensor) -> Tensor:
    """A word index per position: increments at each byte that starts a run of non-space bytes."""
    space = (ids == ord(" ") + ByteTokenizer.num_special_tokens) | (ids == ord("\n") + ByteTokenizer.num_special_tokens)
    boundary = ~space & ~special
    starts = boundary & torch.cat([torch.ones_like(boundary[:, :1]), ~boundary[:, :-1]], dim=1)
    return torch.cumsum(starts.long(), dim=1) * boundary.long() - 1  # -1 for spaces and specials


def mask_tokens(
    input_ids: Tensor,
    attention_mask: Tensor,
    probability: float = 0.15,
    whole_word: bool = False,
    generator: torch.Generator | None = None,
) -> MaskedBatch:
    """Choose positions to predict and corrupt them; special tokens and padding are never chosen.

    Every row gets the same number of chosen positions (``round(probability × shortest row)``, at least 1) so
    that ``output_points`` is a dense ``(B, Q)`` tensor.
    """
    if not 0 < probability < 1:
        raise ValueError(f"masking probability must lie in (0, 1), got {probability}")
    special = (input_ids < ByteTokenizer.num_special_tokens) | (attention_mask == 0)
    scores = torch.rand(input_ids.shape, generator=generator)
    if whole_word:
        words = _word_ids(input_ids, special)
        word_scores = torch.rand(input_ids.shape, generator=generator)
        # every byte of a word takes that word's score, so whole words rank together
        scores = torch.where(words >= 0, word_scores.gather(1, words.clamp(min=0)), scores)
    scores = scores.masked_fill(special, 2.0)
    eligible = (~special).sum(dim=1)
    if int(eligible.min()) == 0:
        raise ValueError("a sequence has no maskable bytes (empty text?)")
    count = max(1, round(probability * int(eligible.min())))
    points = scores.topk(count, dim=1, largest=False).indices.sort(dim=1).values
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels.scatter_(1, points, input_ids.gather(1, points))
    corrupted = input_ids.clone()
    action = torch.rand(points.shape, generator=generator)
    random_bytes = torch.randint(ByteTokenizer.num_special_tokens, ByteTokenizer.vocab_size, points.shape,
                                 generator=generator)
    replacement = torch.where(action < 0.8, torch.full_like(points, ByteTokenizer.mask_token_id),
                              torch.where(action < 0.9, random_bytes, input_ids.gather(1, points)))
    corrupted.scatter_(1, points, replacement)
    return MaskedBatch(corrupted, attention_mask, labels, points)
