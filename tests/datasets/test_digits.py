from __future__ import annotations

import pytest
import torch

from perceiverkit.datasets import Digits


def test_split_sizes_and_items() -> None:
    train, test = Digits("train"), Digits("test")
    assert len(train) + len(test) == 1797
    assert len(test) == 450  # ceil(0.25 * 1797)
    assert not set(train.indices) & set(test.indices)
    image, label = train[0]
    assert image.shape == (1, 8, 8) and image.dtype == torch.float32
    assert isinstance(label, int) and 0 <= label <= 9
    assert train.images.min() == 0.0 and train.images.max() == 1.0
    assert set(test.labels.tolist()) == set(range(10))  # stratified


def test_matches_sklearn_and_is_seeded() -> None:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    test = Digits("test")
    i = 5
    source = test.indices[i]
    assert torch.allclose(test[i][0][0], torch.tensor(bunch.images[source], dtype=torch.float32) / 16)
    assert test[i][1] == bunch.target[source]
    assert Digits("test").indices == test.indices
    assert Digits("test", seed=1).indices != test.indices
    assert len(Digits("test", test_fraction=0.5)) == 899


def test_validation() -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        Digits(test_fraction=1.0)
    with pytest.raises(ValueError, match="split"):
        Digits("val")  # type: ignore[arg-type]
