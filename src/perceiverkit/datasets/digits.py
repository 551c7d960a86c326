"""scikit-learn's bundled 8x8 handwritten digits (1,797 images), a tiny image set that needs no download."""

from __future__ import annotations

import operator
from typing import Literal, SupportsIndex

import torch
from torch.utils.data import Dataset

__all__ = ["Digits"]

Split = Literal["train", "test"]

# load_digits stores each pixel as a count of 0-16 set bits in a 4x4 block of the original 32x32 bitmap.
_MAX_PIXEL = 16.0


class Digits(Dataset[tuple[torch.Tensor, int]]):
    """``(image float32 (1, 8, 8) in [0, 1], label int)`` from ``sklearn.datasets.load_digits``.

    The train/test split is stratified by digit and fixed by ``seed``; ``test_fraction`` of the images
    (rounded up, as scikit-learn does) form the test split.
    """

    classes: list[str]

    def __init__(self, split: Split = "train", seed: int = 0, test_fraction: float = 0.25) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction!r}")
        try:
            from sklearn.datasets import load_digits
            from sklearn.model_selection import train_test_split
        except ImportError as exc:  # scikit-learn is not a core dependency of perceiverkit
            raise ImportError("Digits needs scikit-learn: pip install 'perceiverkit[baselines]'") from exc

        bunch = load_digits()
        images = bunch.images
        targets = bunch.target
        indices = list(range(len(targets)))
        train_idx, test_idx = train_test_split(
            indices, test_size=test_fraction, random_state=seed, shuffle=True, stratify=targets
        )
        chosen = sorted(train_idx if split == "train" else test_idx)  # stable order; a DataLoader shuffles
        self.split = split
        self.images = torch.as_tensor(images[chosen], dtype=torch.float32).div_(_MAX_PIXEL).unsqueeze(1)
        self.labels = torch.as_tensor(targets[chosen], dtype=torch.int64)
        self.indices = chosen  # positions in load_digits(), to trace an item back
        self.classes = [str(d) for d in range(10)]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: SupportsIndex) -> tuple[torch.Tensor, int]:
        i = operator.index(index)
        return self.images[i], int(self.labels[i])
