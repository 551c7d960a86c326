"""A classical text-classification baseline to compare learned models against: TF-IDF + logistic regression."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class BaselineResult:
    """Test accuracy of a scikit-learn baseline and the settings it used."""

    accuracy: float
    description: str


def tfidf_logistic_regression(
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    test_texts: Sequence[str],
    test_labels: Sequence[int],
    ngram_range: tuple[int, int] = (1, 2),
    c: float = 10.0,
    max_iter: int = 300,
) -> BaselineResult:
    """Word n-gram TF-IDF (sublinear term frequency, terms in at least 2 texts) + multinomial logistic
    regression, fitted on the training texts and scored on the test texts."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise ImportError("the TF-IDF baseline needs scikit-learn: pip install 'perceiverkit[baselines]'") from None
    if len(train_texts) != len(train_labels) or len(test_texts) != len(test_labels):
        raise ValueError(f"need one label per text: {len(train_texts)} training texts with {len(train_labels)} "
                         f"labels, {len(test_texts)} test texts with {len(test_labels)} labels")
    if not train_texts or not test_texts:
        raise ValueError("the baseline needs at least one training and one test text")
    vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=ngram_range, min_df=2 if len(train_texts) > 50 else 1)
    features = vectorizer.fit_transform(train_texts)
    classifier = LogisticRegression(C=c, max_iter=max_iter).fit(features, list(train_labels))
    predicted = classifier.predict(vectorizer.transform(test_texts))
    accuracy = float((predicted == list(test_labels)).mean())
    description = (f"TF-IDF word {ngram_range[0]}-{ngram_range[1]}-grams ({features.shape[1]:,} terms) + "
                   f"logistic regression (C={c})")
    return BaselineResult(accuracy, description)


#: The settings :func:`tune_tfidf_logistic_regression` tries by default: (ngram_range, C).
TFIDF_GRID: tuple[tuple[tuple[int, int], float], ...] = (
    ((1, 1), 10.0), ((1, 2), 3.0), ((1, 2), 10.0), ((1, 2), 30.0))


@dataclass
class TunedBaseline:
    """The chosen setting, every setting's validation accuracy, and the chosen setting's test result."""

    ngram_range: tuple[int, int]
    c: float
    validation: dict[str, float]
    test: BaselineResult


def tune_tfidf_logistic_regression(
    train_texts: Sequence[str], train_labels: Sequence[int],
    val_texts: Sequence[str], val_labels: Sequence[int],
    test_texts: Sequence[str], test_labels: Sequence[int],
    grid: Sequence[tuple[tuple[int, int], float]] = TFIDF_GRID,
) -> TunedBaseline:
    """Choose ``(ngram_range, C)`` by accuracy on the validation texts (fitting on the training texts), then
    score that setting once on the test texts: the baseline is tuned on the same validation data as the model
    it is compared with, never on the test split. Ties go to the earlier setting in ``grid``."""
    scores: dict[str, float] = {}
    best: tuple[float, tuple[int, int], float] | None = None
    for ngram_range, c in grid:
        accuracy = tfidf_logistic_regression(train_texts, train_labels, val_texts, val_labels,
                                             ngram_range=ngram_range, c=c).accuracy
        scores[f"ngrams {ngram_range[0]}-{ngram_range[1]}, C={c}"] = accuracy
        if best is None or accuracy > best[0]:
            best = (accuracy, ngram_range, c)
    if best is None:
        raise ValueError("the tuning grid is empty")
    _, ngram_range, c = best
    test = tfidf_logistic_regression(train_texts, train_labels, test_texts, test_labels, ngram_range=ngram_range, c=c)
    return TunedBaseline(ngram_range, c, scores, test)
