"""WordHashTokenizer: ids follow the documented closed form (CRC-32 of the UTF-8 term, modulo the buckets, plus
one), agree with scikit-learn's word analyser on what the terms are, and reject bad input clearly."""

from __future__ import annotations

import zlib

import pytest
import torch

from perceiverkit.word_tokenizer import WordHashTokenizer


def test_ids_are_crc32_of_words_then_word_pairs():
    tok = WordHashTokenizer(num_buckets=1000, model_max_length=16)
    ids = tok.encode("The cat sat.")
    terms = ["the", "cat", "sat", ".", "the cat", "cat sat", "sat ."]
    assert ids == [1 + zlib.crc32(t.encode()) % 1000 for t in terms]
    assert all(1 <= i <= 1000 for i in ids) and tok.vocab_size == len(tok) == 1001


def test_terms_match_scikit_learns_word_ngrams():
    # The oracle: TfidfVectorizer's analyser with the same token pattern and ngram_range=(1, 2) finds the same
    # multiset of words and word pairs (it orders them the same way: all unigrams, then all bigrams).
    from sklearn.feature_extraction.text import TfidfVectorizer

    text = "A tangible and visible entity; an entity that can cast a shadow (Ünïcode too)"
    analyse = TfidfVectorizer(ngram_range=(1, 2), token_pattern=r"[^\W_]+(?:'[^\W_]+)?|[^\w\s]").build_analyzer()
    assert WordHashTokenizer().terms(text) == analyse(text)
    assert WordHashTokenizer(ngrams=1).terms(text) == analyse(text)[:len(WordHashTokenizer().words(text))]


def test_hashing_is_stable_across_instances_and_case():
    a, b = WordHashTokenizer(num_buckets=97), WordHashTokenizer(num_buckets=97)
    assert a.encode("Perceiver IO") == b.encode("perceiver io")


def test_batches_are_padded_with_masks_and_empty_texts_are_fully_masked():
    tok = WordHashTokenizer(num_buckets=50)
    batch = tok(["one two", "", "one"])
    assert batch.input_ids.shape == batch.attention_mask.shape == (3, 3)
    assert batch.attention_mask.tolist() == [[1, 1, 1], [0, 0, 0], [1, 0, 0]]
    assert batch.input_ids[0, 0] == batch.input_ids[2, 0] and torch.all(batch.input_ids[1] == 0)
    with pytest.raises(ValueError, match="padding=True"):
        tok(["one two", "one"], padding=False)


def test_long_texts_raise_unless_truncation_is_asked_for():
    tok = WordHashTokenizer(model_max_length=4)
    with pytest.raises(ValueError, match=r"gives 7 word ids, more than max_length=4"):
        tok("a b c d")
    assert tok.encode("a b c d", truncation=True) == tok.encode("a b c d", max_length=7)[:4]


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(num_buckets=0), ValueError, "num_buckets must be positive"),
    (dict(ngrams=3), ValueError, "ngrams must be 1"),
    (dict(model_max_length=2.5), TypeError, "model_max_length must be an int"),
])
def test_bad_settings_are_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        WordHashTokenizer(**kwargs)


def test_non_string_text_is_rejected():
    with pytest.raises(TypeError, match="texts must be strings, got int"):
        WordHashTokenizer()([1, 2])
