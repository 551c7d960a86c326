"""Byte-level UTF-8 tokenizer for Perceiver IO language models.

Ids 0-5 are the special tokens ``[PAD] [BOS] [EOS] [MASK] [CLS] [SEP]``; every
UTF-8 byte ``b`` maps to id ``b + 6``, giving a fixed vocabulary of 262 ids.
The id layout, templates, truncation and padding reproduce Hugging Face's
``PerceiverTokenizer``, so ids from either work with the same checkpoints.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import ClassVar, overload

import numpy as np
import torch

from .tokenizer_rules import (
    BatchEncoding,
    IdSequence,
    PaddingSide,
    PaddingStrategy,
    ReturnTensors,
    TruncationStrategy,
    _checked_id,
    _id_list,
    _is_scalar,
    _normalise_inputs,
    _package,
    _positive_int,
    _resolve_strategy,
    _truncate,
)

__all__ = ["BatchEncoding", "ByteTokenizer"]

_SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[BOS]", "[EOS]", "[MASK]", "[CLS]", "[SEP]")
_SPECIAL_TO_ID: dict[str, int] = {token: i for i, token in enumerate(_SPECIAL_TOKENS)}
_BYTE_OFFSET = len(_SPECIAL_TOKENS)
# No special token is a prefix of, or overlaps with, another, so leftmost-first
# alternation finds exactly the matches of Transformers' longest-match trie.
_SPECIAL_PATTERN = re.compile("|".join(re.escape(token) for token in _SPECIAL_TOKENS))

_PADDING_ALIASES: dict[object, PaddingStrategy] = {
    False: "do_not_pad",
    True: "longest",
    "do_not_pad": "do_not_pad",
    "longest": "longest",
    "max_length": "max_length",
}
_TRUNCATION_ALIASES: dict[object, TruncationStrategy] = {
    False: "do_not_truncate",
    True: "longest_first",
    "do_not_truncate": "do_not_truncate",
    "longest_first": "longest_first",
    "only_first": "only_first",
    "only_second": "only_second",
}


class ByteTokenizer:
    """UTF-8 byte tokenizer with Perceiver IO's special tokens.

    Args:
        model_max_length: length used by truncation, and by ``padding="max_length"``,
            when no explicit ``max_length`` is given.
    """

    pad_token: ClassVar[str] = "[PAD]"
    bos_token: ClassVar[str] = "[BOS]"
    eos_token: ClassVar[str] = "[EOS]"
    mask_token: ClassVar[str] = "[MASK]"
    cls_token: ClassVar[str] = "[CLS]"
    sep_token: ClassVar[str] = "[SEP]"

    pad_token_id: ClassVar[int] = 0
    bos_token_id: ClassVar[int] = 1
    eos_token_id: ClassVar[int] = 2
    mask_token_id: ClassVar[int] = 3
    cls_token_id: ClassVar[int] = 4
    sep_token_id: ClassVar[int] = 5

    num_special_tokens: ClassVar[int] = _BYTE_OFFSET
    # Unlike Transformers (whose `vocab_size` is 256 and `len()` is 262) this
    # counts the special tokens: it is the embedding table size a model needs.
    vocab_size: ClassVar[int] = _BYTE_OFFSET + 256
    model_input_names: ClassVar[tuple[str, ...]] = ("input_ids", "attention_mask")

    def __init__(self, model_max_length: int = 2048) -> None:
        self.model_max_length = _positive_int(model_max_length, "model_max_length")

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_max_length={self.model_max_length})"

    @property
    def special_tokens_map(self) -> dict[str, str]:
        """Role name (``"pad_token"``, ...) to token string."""
        return {
            "pad_token": self.pad_token,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
            "mask_token": self.mask_token,
            "cls_token": self.cls_token,
            "sep_token": self.sep_token,
        }

    @property
    def all_special_tokens(self) -> list[str]:
        """Special token strings, ordered by id."""
        return list(_SPECIAL_TOKENS)

    @property
    def all_special_ids(self) -> list[int]:
        """Special token ids, ``[0, 1, ..., 5]``."""
        return list(range(_BYTE_OFFSET))

    def get_vocab(self) -> dict[str, int]:
        """Token string to id; bytes appear as the Latin-1 character of the same value."""
        vocab = {chr(byte): byte + _BYTE_OFFSET for byte in range(256)}
        vocab.update(_SPECIAL_TO_ID)
        return vocab

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many special tokens the template adds to a single text or a pair."""
        return 3 if pair else 2

    # ------------------------------------------------------------------ encoding

    def tokenize_to_ids(self, text: str) -> list[int]:
        """Ids of ``text`` without template tokens; literal special-token strings become their id."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids: list[int] = []
        start = 0
        for match in _SPECIAL_PATTERN.finditer(text):
            ids.extend(byte + _BYTE_OFFSET for byte in text[start : match.start()].encode("utf-8"))
            ids.append(_SPECIAL_TO_ID[match.group()])
            start = match.end()
        ids.extend(byte + _BYTE_OFFSET for byte in text[start:].encode("utf-8"))
        return ids

    def build_inputs_with_special_tokens(self, ids: list[int], pair_ids: list[int] | None = None) -> list[int]:
        """Apply the template: ``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]``."""
        if pair_ids is None:
            return [self.cls_token_id, *ids, self.sep_token_id]
        return [self.cls_token_id, *ids, self.sep_token_id, *pair_ids, self.sep_token_id]

    def encode(self, text: str, text_pair: str | None = None, add_special_tokens: bool = True) -> list[int]:
        """Token ids for one text (or one pair), never truncated or padded."""
        ids = self.tokenize_to_ids(text)
        pair_ids = None if text_pair is None else self.tokenize_to_ids(text_pair)
        if add_special_tokens:
            return self.build_inputs_with_special_tokens(ids, pair_ids)
        return ids if pair_ids is None else ids + pair_ids

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | PaddingStrategy = False,
        truncation: bool | TruncationStrategy = False,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: PaddingSide = "right",
        return_tensors: ReturnTensors | None = "pt",
        return_attention_mask: bool = True,
    ) -> BatchEncoding:
        """Encode a text, a pair, or a batch of either into model inputs.

        Args:
            text: one string or a list of strings.
            text_pair: optional second segment(s), matching ``text`` in shape.
            add_special_tokens: wrap each input in the ``[CLS] ... [SEP]`` template.
            padding: ``False``/``"do_not_pad"``, ``True``/``"longest"`` (to the longest
                in the batch) or ``"max_length"``.
            truncation: ``False``/``"do_not_truncate"``, ``True``/``"longest_first"``,
                ``"only_first"`` or ``"only_second"``. Inputs are never shortened
                unless this is set.
            max_length: target length for truncation and ``padding="max_length"``;
                defaults to ``model_max_length`` for those.
            pad_to_multiple_of: round the padded length up to a multiple of this.
            padding_side: ``"right"`` or ``"left"``.
            return_tensors: ``"pt"`` (torch.long, shape ``(batch, length)`` even for a
                single string), ``"np"`` (int64 arrays, same shapes) or ``None``
                (lists; flat for a single string).
            return_attention_mask: include ``attention_mask``.

        Raises:
            TypeError: a text is not a ``str``.
            ValueError: inconsistent arguments, or tensors requested for a batch
                of unequal lengths without padding.
        """
        padding_strategy = _resolve_strategy(padding, _PADDING_ALIASES, "padding")
        truncation_strategy = _resolve_strategy(truncation, _TRUNCATION_ALIASES, "truncation")
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        if return_tensors not in ("pt", "np", None):
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        if max_length is not None:
            max_length = _positive_int(max_length, "max_length")
        if pad_to_multiple_of is not None:
            pad_to_multiple_of = _positive_int(pad_to_multiple_of, "pad_to_multiple_of")

        texts, pairs, is_batched = _normalise_inputs(text, text_pair)

        if max_length is None and (padding_strategy == "max_length" or truncation_strategy != "do_not_truncate"):
            max_length = self.model_max_length
        num_special = self.num_special_tokens_to_add(pair=pairs is not None) if add_special_tokens else 0
        if truncation_strategy != "do_not_truncate":
            assert max_length is not None
            if max_length < num_special:
                raise ValueError(
                    f"max_length={max_length} cannot hold the {num_special} special tokens added to each "
                    "input; raise max_length or pass add_special_tokens=False"
                )
            # Rounding the padded length up would push truncated inputs past
            # max_length again; Transformers rejects this combination too.
            if padding_strategy != "do_not_pad" and pad_to_multiple_of and max_length % pad_to_multiple_of:
                raise ValueError(
                    f"with both truncation and padding, max_length ({max_length}) must be a multiple of "
                    f"pad_to_multiple_of ({pad_to_multiple_of})"
                )

        sequences: list[list[int]] = []
        for index, first_text in enumerate(texts):
            first = self.tokenize_to_ids(first_text)
            second = None if pairs is None else self.tokenize_to_ids(pairs[index])
            if truncation_strategy != "do_not_truncate":
                assert max_length is not None
                first, second = _truncate(first, second, max_length - num_special, truncation_strategy)
            if add_special_tokens:
                sequences.append(self.build_inputs_with_special_tokens(first, second))
            else:
                sequences.append(first if second is None else first + second)

        masks = [[1] * len(sequence) for sequence in sequences]
        if padding_strategy != "do_not_pad":
            target = max_length if padding_strategy == "max_length" else max(map(len, sequences))
            assert target is not None
            if pad_to_multiple_of:
                target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
            for i, sequence in enumerate(sequences):
                missing = target - len(sequence)
                if missing > 0:
                    filler = [self.pad_token_id] * missing
                    zeros = [0] * missing
                    if padding_side == "right":
                        sequences[i], masks[i] = sequence + filler, masks[i] + zeros
                    else:
                        sequences[i], masks[i] = filler + sequence, zeros + masks[i]

        columns: dict[str, list[list[int]]] = {"input_ids": sequences}
        if return_attention_mask:
            columns["attention_mask"] = masks
        return _package(columns, is_batched, return_tensors)

    # ------------------------------------------------------------------ decoding

    def decode(self, ids: int | IdSequence, skip_special_tokens: bool = False) -> str:
        """Text for one sequence of ids.

        Special ids render as their token strings (or vanish with
        ``skip_special_tokens``); bytes are concatenated and UTF-8 decoded with
        invalid sequences replaced by U+FFFD.
        """
        buffer = bytearray()
        for token_id in _id_list(ids):
            if token_id >= _BYTE_OFFSET:
                buffer.append(token_id - _BYTE_OFFSET)
            elif not skip_special_tokens:
                buffer += _SPECIAL_TOKENS[token_id].encode("ascii")
        # Decoding once over the whole buffer (rather than per byte run) matters
        # when skipped specials sit inside a multi-byte character.
        return buffer.decode("utf-8", errors="replace")

    def batch_decode(
        self, sequences: Iterable[IdSequence] | np.ndarray | torch.Tensor, skip_special_tokens: bool = False
    ) -> list[str]:
        """:meth:`decode` each row of a 2-D tensor/array or each item of an iterable."""
        if isinstance(sequences, (torch.Tensor, np.ndarray)) and sequences.ndim != 2:
            raise ValueError(f"batch_decode expects a 2-D tensor or array, got {sequences.ndim} dimension(s)")
        return [self.decode(sequence, skip_special_tokens=skip_special_tokens) for sequence in sequences]

    @overload
    def convert_ids_to_tokens(self, ids: int) -> str: ...

    @overload
    def convert_ids_to_tokens(self, ids: IdSequence) -> list[str]: ...

    def convert_ids_to_tokens(self, ids: int | IdSequence) -> str | list[str]:
        """Token strings for ids; a byte shows as the Latin-1 character of its value."""
        if _is_scalar(ids):
            return self._id_to_token(_checked_id(ids))
        return [self._id_to_token(token_id) for token_id in _id_list(ids)]

    @overload
    def convert_tokens_to_ids(self, tokens: str) -> int: ...

    @overload
    def convert_tokens_to_ids(self, tokens: list[str] | tuple[str, ...]) -> list[int]: ...

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Inverse of :meth:`convert_ids_to_tokens`; unknown tokens raise ``ValueError``."""
        if isinstance(tokens, str):
            return self._token_to_id(tokens)
        return [self._token_to_id(token) for token in tokens]

    @staticmethod
    def _id_to_token(token_id: int) -> str:
        if token_id < _BYTE_OFFSET:
            return _SPECIAL_TOKENS[token_id]
        return chr(token_id - _BYTE_OFFSET)

    @staticmethod
    def _token_to_id(token: str) -> int:
        if not isinstance(token, str):
            raise TypeError(f"tokens must be str, got {type(token).__name__}")
        if token in _SPECIAL_TO_ID:
            return _SPECIAL_TO_ID[token]
        if len(token) == 1 and ord(token) < 256:
            return ord(token) + _BYTE_OFFSET
        raise ValueError(
            f"unknown token {token!r}: expected a special token or a single character in U+0000..U+00FF"
        )
