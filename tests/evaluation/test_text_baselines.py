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
