"""The TF-IDF + logistic-regression baseline separates texts whose classes are word-determined."""

from __future__ import annotations

import pytest

from perceiverkit.evaluation.text_baselines import tfidf_logistic_regression


def test_baseline_learns_word_determined_classes():
    animals = [f"a small {w} animal with fur" for w in ("furry", "wild", "tame", "quick", "striped", "spotted")]
    tools = [f"a metal {w} tool for cutting" for w in ("sharp", "heavy", "steel", "long", "short", "curved")]
    texts, labels = animals + tools, [0] * 6 + [1] * 6
    result = tfidf_logistic_regression(texts[::2] + texts[1::2][:2], labels[::2] + labels[1::2][:2],
                                       ["a big animal with fur", "a tool for cutting wood"], [0, 1])
    assert result.accuracy == 1.0 and "TF-IDF" in result.description


def test_baseline_checks_lengths():
    with pytest.raises(ValueError, match="one label per text"):
        tfidf_logistic_regression(["a", "b"], [0], ["c"], [0])


def test_tuning_chooses_on_validation_and_scores_test_once(monkeypatch):
    # Classes set by word order ("X bites Y" vs "Y bites X"): unigrams cannot tell them apart, word pairs can.
    from perceiverkit.evaluation import text_baselines

    nouns = ["dog", "man", "cat", "fox", "owl", "rat", "bee", "elk"]
    pairs = [(a, b) for a in nouns for b in nouns if a != b]

    def texts(selected):
        return [f"{a} bites {b}" for a, b in selected], [int(a < b) for a, b in selected]

    train, val, test = texts(pairs[::2]), texts(pairs[1::4]), texts(pairs[3::4])
    scored = []
    real = text_baselines.tfidf_logistic_regression
    monkeypatch.setattr(text_baselines, "tfidf_logistic_regression",
                        lambda tr, trl, te, tel, **kw: scored.append(list(te)) or real(tr, trl, te, tel, **kw))
    tuned = text_baselines.tune_tfidf_logistic_regression(*train, *val, *test)
    assert tuned.ngram_range == (1, 2) and len(tuned.validation) == len(text_baselines.TFIDF_GRID)
    assert tuned.validation["ngrams 1-1, C=10.0"] < max(tuned.validation.values())
    assert sum(batch == test[0] for batch in scored) == 1  # the test texts are scored once, by the chosen setting
