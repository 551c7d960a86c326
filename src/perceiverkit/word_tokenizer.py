"""Hashed word n-gram tokenizer: a fixed-size vocabulary of words and word pairs, with no vocabulary file.

Byte-level models must learn spelling before meaning, which takes far more training than a two-core machine
gives a text classifier. This tokenizer feeds a Perceiver words instead: each lower-cased word, and each pair
of adjacent words, is hashed (CRC-32, stable across processes and machines) into one of ``num_buckets`` ids —
the "hashing trick" of linear text classifiers, so a Perceiver sees the same evidence as a TF-IDF model over
word 1–2-grams. Id 0 is padding; a text becomes its words in order, then its word pairs in order.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Sequence
from typing import ClassVar

import torch

from .tokenizer_rules import BatchEncoding, _positive_int

__all__ = ["WordHashTokenizer"]

#: Words (letters/digits, with an optional apostrophe suffix such as "'s") and single punctuation marks.
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[^\w\s]")


class WordHashTokenizer:
    """Hashes lower-cased words and (with ``ngrams=2``) adjacent word pairs into ``num_buckets`` ids.

    Args:
        num_buckets: size of the hashed vocabulary; the model's ``vocab_size`` is ``num_buckets + 1``.
        ngrams: 1 for words only, 2 for words and adjacent pairs.
        model_max_length: longest id sequence; longer texts are cut only with ``truncation=True``.
    """

    pad_token_id: ClassVar[int] = 0
    num_special_tokens: ClassVar[int] = 1
    model_input_names: ClassVar[tuple[str, ...]] = ("input_ids", "attention_mask")

    def __init__(self, num_buckets: int = 1 << 17, ngrams: int = 2, model_max_length: int = 128) -> None:
        self.num_buckets = _positive_int(num_buckets, "num_buckets")
        self.ngrams = _positive_int(ngrams, "ngrams")
        if self.ngrams > 2:
            raise ValueError(f"ngrams must be 1 (words) or 2 (words and word pairs), got {ngrams}")
        self.model_max_length = _positive_int(model_max_length, "model_max_length")

    @property
    def vocab_size(self) -> int:
        """Embedding table size a model needs: the buckets plus padding."""
        return self.num_buckets + self.num_special_tokens

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_buckets={self.num_buckets}, ngrams={self.ngrams}, "
                f"model_max_length={self.model_max_length})")

    def words(self, text: str) -> list[str]:
        """The lower-cased words and punctuation marks of ``text``, in order."""
        if not isinstance(text, str):
            raise TypeError(f"texts must be strings, got {type(text).__name__}")
        return _WORD.findall(text.lower())

    def terms(self, text: str) -> list[str]:
        """What gets hashed: the words, then (``ngrams=2``) each adjacent pair joined by a space."""
        words = self.words(text)
        if self.ngrams == 1:
            return words
        return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]

    def term_id(self, term: str) -> int:
        """The id of one term: ``1 + crc32(utf-8 bytes) mod num_buckets``."""
        return self.num_special_tokens + zlib.crc32(term.encode("utf-8")) % self.num_buckets

    def encode(self, text: str, truncation: bool = False, max_length: int | None = None) -> list[int]:
        """Ids of one text. A text with more ids than ``max_length`` (default ``model_max_length``) raises
        unless ``truncation`` is set, which keeps the first ``max_length`` (the words before the pairs)."""
        limit = self.model_max_length if max_length is None else _positive_int(max_length, "max_length")
        ids = [self.term_id(term) for term in self.terms(text)]
        if len(ids) > limit:
            if not truncation:
                raise ValueError(f"text gives {len(ids)} word ids, more than max_length={limit}; pass "
                                 f"truncation=True to keep the first {limit} or raise model_max_length")
            ids = ids[:limit]
        return ids

    def __call__(self, texts: str | Sequence[str], *, padding: bool = True, truncation: bool = False,
                 max_length: int | None = None) -> BatchEncoding:
        """Encode one text or a batch into ``input_ids`` and ``attention_mask`` tensors ``(batch, length)``.

        ``padding=True`` pads to the longest text of the batch (at least one position, so that an empty text
        still yields a row whose mask is all False); without it the texts must give equal lengths.
        """
        batch = [texts] if isinstance(texts, str) else list(texts)
        rows = [self.encode(text, truncation, max_length) for text in batch]
        lengths = {len(row) for row in rows}
        if not padding and len(lengths) > 1:
            raise ValueError(f"texts give {min(lengths)} to {max(lengths)} ids; pass padding=True")
        width = max(lengths | {1})
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
            attention_mask[i, :len(row)] = 1
        return BatchEncoding({"input_ids": input_ids, "attention_mask": attention_mask})
