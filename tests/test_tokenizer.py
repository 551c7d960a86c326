"""ByteTokenizer checked against Transformers' PerceiverTokenizer as an independent oracle."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import transformers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perceiverkit.tokenizer import BatchEncoding, ByteTokenizer

SPECIALS = ["[PAD]", "[BOS]", "[EOS]", "[MASK]", "[CLS]", "[SEP]"]

SAMPLES: dict[str, str] = {
    "ascii": "Hello, world! The quick brown fox (jumps) over 13 lazy dogs.",
    "accented": "Ça va? Élève naïve, façade, Straße, smørrebrød, Dvořák",
    "cjk": "日本語のテキスト、中文字符，한국어 문장",
    "emoji": "🎉👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷 keycap 1️⃣",
    "mixed": "English, Ελληνικά, русский, العربية, עברית, हिन्दी, ไทย 😀 x",
    "empty": "",
    "whitespace": " \t\n\r\u00a0\u2003\u3000 ",
    "control": "\x00\x01\x07\x1b[0m\x7f\u0085\u200b\ufeff",
    "long": ("abcdé日😀 " * 700)[:5000],
    "special_alone": "[CLS]",
    "special_all_adjacent": "".join(SPECIALS),
    "special_repeated": "[MASK][MASK]x[MASK]",
    "special_lowercase": "[cls] [Sep] [mask] [pad]",
    "special_at_start": "[BOS]start",
    "special_at_end": "end[EOS]",
    "special_spaced": "  [MASK]  a [SEP] ",
    "special_nested_brackets": "[[PAD]]",
    "special_partial": "[MASK [MAS[MASK] MASK] [ CLS ] [UNK]",
    "special_inside_word": "a[SEP]b",
    "special_with_unicode": "é[MASK]日[SEP]😀",
}
assert len(SAMPLES["long"]) == 5000

PAIRS: list[tuple[str, str]] = [
    ("Hello", "world"),
    ("", ""),
    ("", "non-empty"),
    ("日本", "[MASK] emoji 🎉"),
    (SAMPLES["accented"], SAMPLES["cjk"]),
    ("[SEP]", "[CLS]"),
]

BATCH: list[str] = ["a", "", "hello world", "日本語", "[MASK]🎉", "bb"]
TRUNCATIONS: list[Any] = [True, "longest_first", "only_first", "only_second"]


# ---------------------------------------------------------------------- fixtures & helpers


@pytest.fixture(scope="module")
def oracle() -> Any:
    return transformers.PerceiverTokenizer()


@pytest.fixture(scope="module")
def oracle_left() -> Any:
    return transformers.PerceiverTokenizer(padding_side="left")


@pytest.fixture(scope="module")
def oracle_small() -> Any:
    return transformers.PerceiverTokenizer(model_max_length=16)


@pytest.fixture(scope="module")
def tok() -> ByteTokenizer:
    return ByteTokenizer()


def as_lists(encoding: Any) -> dict[str, Any]:
    return {key: value.tolist() if hasattr(value, "tolist") else value for key, value in dict(encoding).items()}


def assert_matches(ours: ByteTokenizer, theirs: Any, *args: Any, **kwargs: Any) -> None:
    """Same call on both tokenizers (lists out) must give identical ids and masks."""
    # The oracle truncates whenever max_length is given and truncation is unset; always pass it explicitly.
    kwargs.setdefault("truncation", False)
    expected = as_lists(theirs(*args, **kwargs))
    actual = ours(*args, return_tensors=None, **kwargs)
    assert isinstance(actual, BatchEncoding)
    assert dict(actual) == expected


# ---------------------------------------------------------------------- vocabulary


def test_vocabulary_constants_match_oracle(tok: ByteTokenizer, oracle: Any) -> None:
    for role in ("pad", "bos", "eos", "mask", "cls", "sep"):
        assert getattr(tok, f"{role}_token_id") == getattr(oracle, f"{role}_token_id")
        assert getattr(tok, f"{role}_token") == getattr(oracle, f"{role}_token")
    assert [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id] == [0, 1, 2]
    assert [tok.mask_token_id, tok.cls_token_id, tok.sep_token_id] == [3, 4, 5]
    assert ByteTokenizer.vocab_size == len(tok) == len(oracle) == 262
    assert tok.special_tokens_map == oracle.special_tokens_map
    assert sorted(tok.all_special_ids) == sorted(oracle.all_special_ids)
    assert tok.get_vocab() == oracle.get_vocab()
    assert tok.model_max_length == oracle.model_max_length == 2048
    assert ByteTokenizer(model_max_length=77).model_max_length == 77


def test_token_conversions_match_oracle(tok: ByteTokenizer, oracle: Any) -> None:
    all_ids = list(range(262))
    tokens = tok.convert_ids_to_tokens(all_ids)
    assert tokens == oracle.convert_ids_to_tokens(all_ids)
    assert tok.convert_ids_to_tokens(71) == oracle.convert_ids_to_tokens(71) == "A"
    assert tok.convert_tokens_to_ids(tokens) == oracle.convert_tokens_to_ids(tokens) == all_ids
    assert tok.convert_tokens_to_ids("[MASK]") == 3


# ---------------------------------------------------------------------- single texts


@pytest.mark.parametrize("text", SAMPLES.values(), ids=SAMPLES.keys())
def test_single_text_matches_oracle(tok: ByteTokenizer, oracle: Any, text: str) -> None:
    assert_matches(tok, oracle, text)
    assert_matches(tok, oracle, text, add_special_tokens=False)
    assert tok.encode(text) == oracle.encode(text)
    assert tok.encode(text, add_special_tokens=False) == oracle.encode(text, add_special_tokens=False)
    ids = tok.encode(text)
    for skip in (False, True):
        assert tok.decode(ids, skip_special_tokens=skip) == oracle.decode(ids, skip_special_tokens=skip)
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_special_token_strings_become_single_ids(tok: ByteTokenizer) -> None:
    assert tok.encode("[MASK][MASK]", add_special_tokens=False) == [3, 3]
    assert tok.encode(" [CLS] ", add_special_tokens=False) == [38, 4, 38]  # spaces kept, not stripped
    assert tok.encode("[cls]", add_special_tokens=False) == [b + 6 for b in b"[cls]"]


def test_single_text_tensors_match_oracle(tok: ByteTokenizer, oracle: Any) -> None:
    ours = tok("héllo [MASK]")
    theirs = oracle("héllo [MASK]", return_tensors="pt")
    assert ours.input_ids.dtype == ours.attention_mask.dtype == torch.long
    assert ours.input_ids.shape == (1, 10)
    assert torch.equal(ours.input_ids, theirs["input_ids"])
    assert torch.equal(ours.attention_mask, theirs["attention_mask"])


# ---------------------------------------------------------------------- pairs & batches


@pytest.mark.parametrize("pair", PAIRS, ids=range(len(PAIRS)))
def test_pair_matches_oracle(tok: ByteTokenizer, oracle: Any, pair: tuple[str, str]) -> None:
    first, second = pair
    assert_matches(tok, oracle, first, second)
    assert_matches(tok, oracle, first, second, add_special_tokens=False)
    assert tok.encode(first, second) == oracle.encode(first, second)
    assert tok.encode(first, second, add_special_tokens=False) == oracle.encode(first, second, add_special_tokens=False)


def test_batch_of_pairs_matches_oracle(tok: ByteTokenizer, oracle: Any) -> None:
    firsts, seconds = map(list, zip(*PAIRS))
    assert_matches(tok, oracle, firsts, seconds)
    assert_matches(tok, oracle, firsts, seconds, padding=True)
    assert_matches(tok, oracle, firsts, seconds, padding="max_length", max_length=64, pad_to_multiple_of=7)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"padding": True},
        {"padding": "longest"},
        {"padding": "do_not_pad"},
        {"padding": "max_length", "max_length": 12},
        {"padding": "max_length", "max_length": 5},  # shorter than some inputs: those stay long
        {"padding": True, "pad_to_multiple_of": 4},
        {"padding": True, "pad_to_multiple_of": 5},
        {"padding": "max_length", "max_length": 10, "pad_to_multiple_of": 4},
        {"padding": True, "add_special_tokens": False},
        {"padding": "max_length", "max_length": 16, "truncation": True, "pad_to_multiple_of": 8},
        {"padding": "max_length", "max_length": 6, "truncation": True},
        {"padding": True, "max_length": 6, "truncation": "only_first"},
    ],
    ids=lambda options: ",".join(f"{k}={v}" for k, v in options.items()) or "defaults",
)
def test_batch_matches_oracle(tok: ByteTokenizer, oracle: Any, oracle_left: Any, options: dict[str, Any]) -> None:
    assert_matches(tok, oracle, BATCH, **options)
    assert_matches(tok, oracle_left, BATCH, padding_side="left", **options)


def test_single_text_padding_matches_oracle(tok: ByteTokenizer, oracle: Any, oracle_left: Any) -> None:
    for options in ({"padding": True, "pad_to_multiple_of": 3}, {"padding": "max_length", "max_length": 9}):
        assert_matches(tok, oracle, "abcd", **options)
        assert_matches(tok, oracle_left, "abcd", padding_side="left", **options)
        assert_matches(tok, oracle, "abcd", "ef", **options)


def test_padded_batch_tensors_match_oracle(tok: ByteTokenizer, oracle_left: Any) -> None:
    ours = tok(BATCH, padding=True, padding_side="left")
    theirs = oracle_left(BATCH, padding=True, return_tensors="pt")
    assert ours.input_ids.shape == (len(BATCH), 13)
    assert torch.equal(ours.input_ids, theirs["input_ids"])
    assert torch.equal(ours.attention_mask, theirs["attention_mask"])


def test_model_max_length_is_the_default_length(oracle_small: Any) -> None:
    small = ByteTokenizer(model_max_length=16)
    texts = ["short", "a much longer text than sixteen bytes", "日本語"]
    assert_matches(small, oracle_small, texts, padding="max_length")
    assert_matches(small, oracle_small, texts, truncation=True)
    assert_matches(small, oracle_small, texts, texts[::-1], truncation=True, padding="max_length")


# ---------------------------------------------------------------------- truncation


@pytest.mark.parametrize("text", ["abcdefgh", "日本語🎉", "[MASK]x[SEP]y"])
@pytest.mark.parametrize("strategy", [True, "longest_first", "only_first"])
def test_single_truncation_matches_oracle(tok: ByteTokenizer, oracle: Any, text: str, strategy: Any) -> None:
    for max_length in range(2, 18):
        assert_matches(tok, oracle, text, truncation=strategy, max_length=max_length)
        assert_matches(tok, oracle, text, truncation=strategy, max_length=max_length, add_special_tokens=False)


@pytest.mark.parametrize("strategy", TRUNCATIONS)
def test_pair_truncation_matches_oracle_where_it_fits(tok: ByteTokenizer, oracle: Any, strategy: Any) -> None:
    """Every length combination, ties included: equal to the oracle, or an error where it overflows max_length."""
    lengths = [0, 1, 2, 3, 4, 5, 8]
    for len_a in lengths:
        for len_b in lengths:
            first, second = "abcdefgh"[:len_a], "STUVWXYZ"[:len_b]
            for max_length in range(3, len_a + len_b + 5):
                expected = oracle(first, second, truncation=strategy, max_length=max_length)
                if len(expected["input_ids"]) <= max_length:
                    actual = tok(first, second, truncation=strategy, max_length=max_length, return_tensors=None)
                    assert dict(actual) == dict(expected), (first, second, max_length)
                else:
                    # The oracle silently overshoots max_length here; we refuse instead.
                    with pytest.raises(ValueError, match="truncation="):
                        tok(first, second, truncation=strategy, max_length=max_length)


def test_longest_first_tie_breaking(tok: ByteTokenizer, oracle: Any) -> None:
    # Equal lengths, odd removal: the second sequence loses the extra id.
    args: dict[str, Any] = {"truncation": True, "max_length": 8, "return_tensors": None}
    assert tok("abcd", "wxyz", **args).input_ids == [4, 103, 104, 105, 5, 125, 126, 5]
    assert_matches(tok, oracle, "abcd", "wxyz", truncation=True, max_length=8)
    assert_matches(tok, oracle, "abcdef", "xyz", truncation=True, max_length=6)


def test_no_silent_truncation(tok: ByteTokenizer) -> None:
    text = SAMPLES["long"]
    byte_length = len(text.encode("utf-8"))
    assert tok(text).input_ids.shape == (1, byte_length + 2)
    assert tok([text, "x"], padding=True).input_ids.shape == (2, byte_length + 2)
    # Unlike the oracle, a bare max_length does not switch truncation on.
    assert len(tok("abcdef", max_length=4, return_tensors=None).input_ids) == 8


# ---------------------------------------------------------------------- decoding


INVALID_BYTE_RUNS: list[list[int]] = [
    [0xFF],
    [0xFF, 0xFE, 0xC3],
    [0xC3],  # truncated two-byte character
    [0xE2, 0x82],  # truncated three-byte character
    [0xF0, 0x9F, 0x98],  # truncated four-byte character
    [0x80, 0x80, 0x41],  # stray continuation bytes
    [0xC0, 0xAF],  # overlong encoding
    [0xED, 0xA0, 0x80],  # encoded surrogate
    [0xF4, 0x90, 0x80, 0x80],  # beyond U+10FFFF
    [0xC3, 0xA9, 0xE2, 0x82, 0x41, 0xE6, 0x97, 0xA5],
]


@pytest.mark.parametrize("byte_run", INVALID_BYTE_RUNS, ids=lambda run: bytes(run).hex())
def test_decode_invalid_utf8_matches_oracle(tok: ByteTokenizer, oracle: Any, byte_run: list[int]) -> None:
    ids = [b + 6 for b in byte_run]
    with_specials = [4, *ids[:1], 3, *ids[1:], 5, 0]
    for sequence in (ids, with_specials):
        for skip in (False, True):
            assert tok.decode(sequence, skip_special_tokens=skip) == oracle.decode(sequence, skip_special_tokens=skip)


def test_decode_specials_between_bytes(tok: ByteTokenizer, oracle: Any) -> None:
    e_acute = [0xC3 + 6, 3, 0xA9 + 6]  # é split by [MASK]
    assert tok.decode(e_acute) == oracle.decode(e_acute) == "\ufffd[MASK]\ufffd"
    assert tok.decode(e_acute, skip_special_tokens=True) == oracle.decode(e_acute, skip_special_tokens=True) == "é"
    assert tok.decode(list(range(6))) == oracle.decode(list(range(6))) == "".join(SPECIALS)
    assert tok.decode([]) == oracle.decode([]) == ""


def test_decode_accepts_tensors_and_arrays(tok: ByteTokenizer, oracle: Any) -> None:
    encoding = tok(BATCH, padding=True)
    expected = oracle.batch_decode(encoding.input_ids.tolist())
    assert tok.batch_decode(encoding.input_ids) == expected
    assert tok.batch_decode(encoding.input_ids.numpy()) == expected
    assert tok.batch_decode(encoding.input_ids.tolist()) == expected
    assert tok.batch_decode(encoding.input_ids, skip_special_tokens=True) == oracle.batch_decode(
        encoding.input_ids.tolist(), skip_special_tokens=True
    )
    row = encoding.input_ids[2]
    assert tok.decode(row) == tok.decode(row.numpy()) == tok.decode(row.tolist()) == oracle.decode(row.tolist())
    assert tok.decode(np.array([110, 111], dtype=np.int32)) == "hi"


# ---------------------------------------------------------------------- BatchEncoding


def test_batch_encoding_access(tok: ByteTokenizer) -> None:
    encoding = tok(["ab", "c"], padding=True)
    assert encoding["input_ids"] is encoding.input_ids
    assert encoding["attention_mask"] is encoding.attention_mask
    assert set(encoding) == {"input_ids", "attention_mask"}

    def model(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return input_ids * attention_mask

    assert model(**encoding).shape == (2, 4)
    assert encoding.to("cpu") is encoding


def test_return_types(tok: ByteTokenizer, oracle: Any) -> None:
    single = tok("ab", return_tensors=None)
    assert single.input_ids == [4, 103, 104, 5] and single.attention_mask == [1, 1, 1, 1]
    batch = tok(["ab"], return_tensors=None)
    assert batch.input_ids == [[4, 103, 104, 5]]
    arrays = tok("ab", return_tensors="np")
    assert arrays.input_ids.dtype == np.int64 and arrays.input_ids.shape == (1, 4)
    no_mask = tok("ab", return_attention_mask=False)
    assert list(no_mask) == ["input_ids"]
    assert as_lists(tok("ab", return_attention_mask=False, return_tensors=None)) == as_lists(
        oracle("ab", return_attention_mask=False)
    )
    with pytest.raises(AttributeError, match="return_attention_mask"):
        no_mask.attention_mask  # noqa: B018


def test_empty_text_pads_like_a_batch(tok: ByteTokenizer, oracle: Any) -> None:
    # The oracle leaves a lone empty sequence unpadded but pads it inside a batch; we always pad.
    options: dict[str, Any] = {"add_special_tokens": False, "padding": "max_length", "max_length": 3}
    assert tok("", return_tensors=None, **options).input_ids == [0, 0, 0]
    assert_matches(tok, oracle, [""], **options)


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [5, None, b"bytes", ["ok", 5], ("ok", None)])
def test_non_str_text_raises_type_error(tok: ByteTokenizer, bad: Any) -> None:
    with pytest.raises(TypeError, match="str"):
        tok(bad)


def test_text_pair_errors(tok: ByteTokenizer) -> None:
    with pytest.raises(ValueError, match="same length"):
        tok(["a", "b"], ["c"])
    with pytest.raises(TypeError, match="text_pair"):
        tok(["a"], "c")
    with pytest.raises(TypeError, match="text_pair"):
        tok("a", ["c"])
    with pytest.raises(TypeError, match="str"):
        tok(["a"], [3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="str"):
        tok.encode(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty list"):
        tok([])


@pytest.mark.parametrize("bad_ids", [[262], [-1], [6, 1000]])
def test_decode_out_of_range_raises(tok: ByteTokenizer, bad_ids: list[int]) -> None:
    with pytest.raises(ValueError, match=r"\[0, 262\)"):
        tok.decode(bad_ids)
    with pytest.raises(ValueError, match=r"\[0, 262\)"):
        tok.batch_decode([bad_ids])


def test_decode_shape_and_type_errors(tok: ByteTokenizer) -> None:
    with pytest.raises(ValueError, match="batch_decode"):
        tok.decode(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="batch_decode"):
        tok.decode([[6, 7]])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="2-D"):
        tok.batch_decode(torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="int"):
        tok.decode(torch.tensor([6.0, 7.0]))
    with pytest.raises(TypeError, match="int"):
        tok.decode("abc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown token"):
        tok.convert_tokens_to_ids("ab")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"padding": "bogus"}, "padding strategy"),
        ({"padding": 1}, "padding strategy"),
        ({"truncation": "longest"}, "truncation strategy"),
        ({"truncation": "bogus"}, "truncation strategy"),
        ({"padding_side": "middle"}, "padding_side"),
        ({"return_tensors": "tf"}, "return_tensors"),
        ({"max_length": 0}, "max_length"),
        ({"max_length": 1, "truncation": True}, "special tokens"),
        ({"padding": True, "pad_to_multiple_of": 0}, "pad_to_multiple_of"),
        ({"padding": True, "truncation": True, "max_length": 10, "pad_to_multiple_of": 4}, "multiple"),
        ({"truncation": "only_second", "max_length": 4}, "only_second"),
    ],
)
def test_bad_options_raise_value_error(tok: ByteTokenizer, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tok("abcdef", **options)


def test_max_length_must_hold_pair_specials(tok: ByteTokenizer) -> None:
    with pytest.raises(ValueError, match="3 special tokens"):
        tok("abc", "def", truncation=True, max_length=2)
    assert tok("abc", "def", truncation=True, max_length=3, return_tensors=None).input_ids == [4, 5, 5]


def test_unequal_batch_needs_padding_for_tensors(tok: ByteTokenizer) -> None:
    with pytest.raises(ValueError, match="padding=True"):
        tok(["a", "bcd"])
    with pytest.raises(ValueError, match="padding=True"):
        tok(["a", "bcd"], return_tensors="np")
    assert tok(["a", "bcd"], return_tensors=None).input_ids == [[4, 103, 5], [4, 104, 105, 106, 5]]


def test_bad_constructor_argument() -> None:
    with pytest.raises(ValueError, match="model_max_length"):
        ByteTokenizer(model_max_length=0)
    with pytest.raises(TypeError, match="model_max_length"):
        ByteTokenizer(model_max_length=2.5)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- properties

FRAGMENTS = ["[", "]", "PAD", "BOS", "MASK", "CLS", "SEP", "[PAD]", "[MASK]", "[SEP", "CLS]", "a", " ", "é", "日", "🎉"]
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(text=st.text())
def test_property_arbitrary_text_matches_oracle(tok: ByteTokenizer, oracle: Any, text: str) -> None:
    ids = tok.encode(text)
    assert ids == oracle.encode(text)
    assert tok.decode(ids) == oracle.decode(ids)
    assert tok.decode(ids, skip_special_tokens=True) == oracle.decode(ids, skip_special_tokens=True)
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


@PROPERTY_SETTINGS
@given(text=st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
def test_property_special_token_splitting_matches_oracle(tok: ByteTokenizer, oracle: Any, text: str) -> None:
    assert tok.encode(text, add_special_tokens=False) == oracle.encode(text, add_special_tokens=False)


@PROPERTY_SETTINGS
@given(ids=st.lists(st.integers(0, 261), max_size=24), skip=st.booleans())
def test_property_decode_matches_oracle(tok: ByteTokenizer, oracle: Any, ids: list[int], skip: bool) -> None:
    assert tok.decode(ids, skip_special_tokens=skip) == oracle.decode(ids, skip_special_tokens=skip)


@PROPERTY_SETTINGS
@given(
    first=st.text(max_size=12),
    second=st.text(max_size=12),
    max_length=st.integers(3, 40),
    strategy=st.sampled_from(TRUNCATIONS),
)
def test_property_pair_truncation_matches_oracle(
    tok: ByteTokenizer, oracle: Any, first: str, second: str, max_length: int, strategy: Any
) -> None:
    expected = oracle(first, second, truncation=strategy, max_length=max_length)
    if len(expected["input_ids"]) <= max_length:
        actual = tok(first, second, truncation=strategy, max_length=max_length, return_tensors=None)
        assert dict(actual) == dict(expected)
    else:
        with pytest.raises(ValueError):
            tok(first, second, truncation=strategy, max_length=max_length)
