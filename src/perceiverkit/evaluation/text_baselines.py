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
