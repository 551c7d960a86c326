"""What the byte tokenizer returns, and the input checks, truncation and packaging rules it applies."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, SupportsIndex, TypeVar, cast

import numpy as np
import torch

#: Six special tokens followed by the 256 byte values.
VOCAB_SIZE = 262

PaddingStrategy = Literal["longest", "max_length", "do_not_pad"]
TruncationStrategy = Literal["longest_first", "only_first", "only_second", "do_not_truncate"]
PaddingSide = Literal["right", "left"]
ReturnTensors = Literal["pt", "np"]

# Anything `decode` can read: plain ints, numpy arrays, torch tensors.
IdSequence = Sequence[int] | np.ndarray | torch.Tensor


class BatchEncoding(dict[str, Any]):
    """Tokenizer output: a dict of model inputs that also allows attribute access.

    Being a real ``dict`` lets callers write ``model(**encoding)``. Values are typed ``Any`` because their kind
    (tensors, arrays or lists) is chosen at run time by the tokenizer's ``return_tensors`` argument.
    """

    @property
    def input_ids(self) -> Any:
        """Token ids: a tensor, an array or list(s), depending on ``return_tensors``."""
        return self["input_ids"]

    @property
    def attention_mask(self) -> Any:
        """1 for real tokens, 0 for padding."""
        try:
            return self["attention_mask"]
        except KeyError:
            raise AttributeError(
                "this BatchEncoding has no attention_mask (it was built with return_attention_mask=False)"
            ) from None

    def to(self, device: torch.device | str) -> BatchEncoding:
        """Move every tensor value to ``device`` in place and return ``self``."""
        for key, value in self.items():
            if isinstance(value, torch.Tensor):
                self[key] = value.to(device)
        return self


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return int(value)


_Strategy = TypeVar("_Strategy", bound=str)


def _resolve_strategy(value: object, aliases: Mapping[object, _Strategy], name: str) -> _Strategy:
    # Type-check first: 0/1 compare equal to False/True and would slip through the lookup.
    if isinstance(value, (bool, str)) and value in aliases:
        return aliases[value]
    choices = ", ".join(repr(key) for key in aliases)
    raise ValueError(f"unknown {name} strategy {value!r}; expected one of {choices}")


def _normalise_inputs(
    text: str | Sequence[str], text_pair: str | Sequence[str] | None
) -> tuple[list[str], list[str] | None, bool]:
    """Return ``(texts, pairs, is_batched)`` after checking types and lengths."""
    if isinstance(text, str):
        if text_pair is not None and not isinstance(text_pair, str):
            raise TypeError(
                f"text is a single str, so text_pair must be a str or None, got {type(text_pair).__name__}"
            )
        return [text], None if text_pair is None else [text_pair], False
    if not isinstance(text, (list, tuple)):
        raise TypeError(f"text must be a str or a list of str, got {type(text).__name__}")
    if not text:
        raise ValueError("text is an empty list; pass at least one string")
    _check_all_str(text, "text")
    if text_pair is None:
        return list(text), None, True
    if not isinstance(text_pair, (list, tuple)):
        raise TypeError(f"text is a list, so text_pair must be a list of str too, got {type(text_pair).__name__}")
    if len(text_pair) != len(text):
        raise ValueError(f"text and text_pair must have the same length, got {len(text)} and {len(text_pair)}")
    _check_all_str(text_pair, "text_pair")
    return list(text), list(text_pair), True


def _check_all_str(items: Sequence[object], name: str) -> None:
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(item).__name__}")


def _truncate(
    first: list[int], second: list[int] | None, budget: int, strategy: TruncationStrategy
) -> tuple[list[int], list[int] | None]:
    """Shorten ``first``/``second`` so together they fit ``budget`` ids."""
    excess = len(first) + (len(second) if second is not None else 0) - budget
    if excess <= 0:
        return first, second
    if strategy == "longest_first" and second is None:
        strategy = "only_first"
    if strategy == "only_first":
        if excess > len(first):
            raise ValueError(
                f"truncation='only_first' must remove {excess} ids but the first sequence has only "
                f"{len(first)}; use truncation='longest_first' or a larger max_length"
            )
        return first[: len(first) - excess], second
    if strategy == "only_second":
        if second is None or excess > len(second):
            available = 0 if second is None else len(second)
            raise ValueError(
                f"truncation='only_second' must remove {excess} ids but the second sequence has only "
                f"{available}; use truncation='longest_first' or a larger max_length"
            )
        return first, second[: len(second) - excess]
    assert second is not None
    # Transformers' rule: first cut the longer side down to the shorter one,
    # then split what is left evenly, the odd id coming off the first sequence
    # when it was the longer one and off the second otherwise (ties included).
    gap = abs(len(first) - len(second))
    head = min(gap, excess)
    rest = excess - head
    if len(first) > len(second):
        cut_first, cut_second = head + rest // 2, rest - rest // 2
    else:
        cut_first, cut_second = rest // 2, head + rest - rest // 2
    return first[: len(first) - cut_first], second[: len(second) - cut_second]


def _package(
    columns: dict[str, list[list[int]]], is_batched: bool, return_tensors: ReturnTensors | None
) -> BatchEncoding:
    if return_tensors is None:
        if is_batched:
            return BatchEncoding(columns)
        return BatchEncoding({key: rows[0] for key, rows in columns.items()})
    lengths = {len(row) for row in columns["input_ids"]}
    if len(lengths) > 1:
        raise ValueError(
            f"cannot build {return_tensors!r} tensors from sequences of different lengths "
            f"({min(lengths)} to {max(lengths)}); pass padding=True (or padding='max_length') "
            "or return_tensors=None"
        )
    if return_tensors == "pt":
        return BatchEncoding({key: torch.tensor(rows, dtype=torch.long) for key, rows in columns.items()})
    return BatchEncoding({key: np.array(rows, dtype=np.int64) for key, rows in columns.items()})


def _is_scalar(ids: object) -> bool:
    if isinstance(ids, (torch.Tensor, np.ndarray)):
        return ids.ndim == 0
    return isinstance(ids, (int, np.integer))


def _checked_id(value: object) -> int:
    if isinstance(value, bool):
        raise TypeError("token ids must be ints, got bool")
    try:
        token_id = operator.index(cast(SupportsIndex, value))
    except TypeError:
        raise TypeError(f"token ids must be ints, got {type(value).__name__}") from None
    if not 0 <= token_id < VOCAB_SIZE:
        raise ValueError(f"token id {token_id} is outside the vocabulary range [0, {VOCAB_SIZE})")
    return token_id


def _id_list(ids: int | IdSequence) -> list[int]:
    """Validate one sequence of ids (or a lone id) and return it as a list of ints."""
    values: Iterable[object]
    if isinstance(ids, (torch.Tensor, np.ndarray)):
        if ids.ndim > 1:
            raise ValueError(
                f"expected a 1-D sequence of ids, got {ids.ndim} dimensions; use batch_decode for batches"
            )
        values = ids.reshape(-1).tolist()
    elif isinstance(ids, (int, np.integer)):
        values = [ids]
    elif isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise TypeError(f"expected a sequence of int ids, got {type(ids).__name__}")
    else:
        values = ids
    result = []
    for value in values:
        if isinstance(value, (list, tuple)) or (isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim > 0):
            raise ValueError("expected a 1-D sequence of ids, got a nested sequence; use batch_decode for batches")
        result.append(_checked_id(value))
    return result
