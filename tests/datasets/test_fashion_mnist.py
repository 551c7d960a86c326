from __future__ import annotations

import copy
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from perceiverkit.datasets import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    DataMissingError,
    FashionMNIST,
    load_fashion_mnist_arrays,
    random_flip_crop,
    read_idx,
)
from perceiverkit.datasets import fashion_mnist as fm


@pytest.fixture(scope="module")
def train_set(fashion_root: Path) -> FashionMNIST:
    return FashionMNIST("train")


@pytest.fixture(scope="module")
def test_set(fashion_root: Path) -> FashionMNIST:
    return FashionMNIST("test", normalize=False)


def _variant(dataset: FashionMNIST, **options: bool) -> FashionMNIST:
    """The shared dataset with other transform options, without reading the files again."""
    clone = copy.copy(dataset)
    for name, value in options.items():
        setattr(clone, name, value)
    return clone


def _write_idx(path: Path, array: np.ndarray, type_code: int, compress: bool = False) -> Path:
    header = struct.pack(">HBB", 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def test_classes() -> None:
    assert FASHION_MNIST_CLASSES == (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )


def test_counts_shapes_and_labels(train_set: FashionMNIST, test_set: FashionMNIST) -> None:
    assert len(train_set) == 60000 and len(test_set) == 10000
    image, label = train_set[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32
    assert isinstance(label, int)
    for ds, per_class in ((train_set, 6000), (test_set, 1000)):
        assert ds.labels.min() == 0 and ds.labels.max() == 9
        assert torch.bincount(ds.labels).tolist() == [per_class] * 10
    raw, _ = test_set[-1]
    assert raw.min() >= 0.0 and raw.max() <= 1.0


def test_first_item_matches_raw_idx_bytes(fashion_root: Path, train_set: FashionMNIST) -> None:
    # Parse the raw files by hand (not through read_idx) to check the reader end to end.
    with gzip.open(fashion_root / "train-labels-idx1-ubyte.gz", "rb") as f:
        magic, count = struct.unpack(">II", f.read(8))
        first_label = f.read(1)[0]
    with gzip.open(fashion_root / "train-images-idx3-ubyte.gz", "rb") as f:
        magic_images, n, rows, cols = struct.unpack(">IIII", f.read(16))
        first_image = np.frombuffer(f.read(rows * cols), dtype=np.uint8).reshape(rows, cols).copy()
    assert (magic, count) == (0x00000801, 60000)
    assert (magic_images, n, rows, cols) == (0x00000803, 60000, 28, 28)
    assert first_label == 9  # Ankle boot
    assert train_set[0][1] == first_label
    assert np.array_equal(train_set.images[0].numpy(), first_image)
    unnormalised = _variant(train_set, normalize=False)[0][0]
    assert torch.allclose(unnormalised[0], torch.from_numpy(first_image).float() / 255)


def test_normalisation_constants_match_the_data(train_set: FashionMNIST) -> None:
    # Exact statistics from the histogram of the 47 million uint8 pixels.
    counts = np.bincount(train_set.images.numpy().ravel(), minlength=256).astype(np.float64)
    values = np.arange(256) / 255
    mean = (counts * values).sum() / counts.sum()
    std = np.sqrt((counts * (values - mean) ** 2).sum() / counts.sum())
    assert mean == pytest.approx(FASHION_MNIST_MEAN, abs=1e-9)
    assert std == pytest.approx(FASHION_MNIST_STD, abs=1e-9)
    assert FASHION_MNIST_MEAN == pytest.approx(0.2860, abs=1e-4)
    assert FASHION_MNIST_STD == pytest.approx(0.3530, abs=1e-4)


def test_load_arrays(fashion_root: Path) -> None:
    images, labels = load_fashion_mnist_arrays("test", root=fashion_root)
    assert images.dtype == np.uint8 and images.shape == (10000, 28, 28)
    assert labels.dtype == np.int64 and labels.shape == (10000,)


def test_normalised_items_are_standardised(train_set: FashionMNIST) -> None:
    # Every 20th image: 3,000 items, enough for the statistics to be close to 0 and 1.
    batch = torch.stack([train_set[i][0] for i in range(0, len(train_set), 20)])
    assert batch.mean().item() == pytest.approx(0.0, abs=0.02)
    assert batch.std().item() == pytest.approx(1.0, abs=0.02)


def test_augmentation_keeps_shape_and_changes_pixels(train_set: FashionMNIST) -> None:
    augmented = _variant(train_set, augment=True)
    plain = train_set[7][0]
    torch.manual_seed(0)
    draws = [augmented[7][0] for _ in range(10)]
    assert all(d.shape == (1, 28, 28) for d in draws)
    assert any(not torch.equal(d, plain) for d in draws)
    torch.manual_seed(0)
    assert all(torch.equal(d, augmented[7][0]) for d in draws)  # seeded by torch's RNG


def test_random_flip_crop_is_a_shifted_window() -> None:
    image = torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(2, 5, 6)
    padded = {flip: torch.nn.functional.pad(image.flip(-1) if flip else image, (2, 2, 2, 2)) for flip in (False, True)}
    candidates = [p[:, y : y + 5, x : x + 6] for p in padded.values() for y in range(5) for x in range(5)]
    generator = torch.Generator().manual_seed(3)
    seen = set()
    for _ in range(50):
        out = random_flip_crop(image, padding=2, generator=generator)
        matches = [i for i, c in enumerate(candidates) if torch.equal(out, c)]
        assert matches, "output is not a crop of the padded (optionally flipped) image"
        seen.add(matches[0])
    assert len(seen) > 5
    with pytest.raises(ValueError, match="C, H, W"):
        random_flip_crop(torch.zeros(28, 28))


def test_read_idx_gzip_plain_and_dtypes(tmp_path: Path) -> None:
    values = np.array([[1, -2, 70000], [0, 5, -70000]], dtype=np.int32)
    plain = read_idx(_write_idx(tmp_path / "a.idx", values, 0x0C))
    packed = read_idx(_write_idx(tmp_path / "b.idx", values, 0x0C, compress=True))
    for out in (plain, packed):
        assert out.dtype == np.int32 and out.dtype.isnative
        assert np.array_equal(out, values)
        out[0, 0] = 9  # writable
    floats = read_idx(_write_idx(tmp_path / "c.idx", np.array([0.5, -1.25], dtype=np.float64), 0x0E))
    assert floats.tolist() == [0.5, -1.25]


def test_read_idx_rejects_bad_files(tmp_path: Path) -> None:
    good = _write_idx(tmp_path / "good.idx", np.arange(6, dtype=np.uint8).reshape(2, 3), 0x08).read_bytes()
    cases = {
        "magic": b"\x01\x00" + good[2:],
        "type code": good[:2] + b"\x07" + good[3:],
        "0 dimensions": good[:3] + b"\x00" + good[4:],
        "payload": good[:-1],
    }
    for needle, data in cases.items():
        path = tmp_path / f"{needle.replace(' ', '_')}.idx"
        path.write_bytes(data)
        with pytest.raises(ValueError, match=needle) as info:
            read_idx(path)
        assert str(path) in str(info.value)
    (tmp_path / "long.idx").write_bytes(good + b"\x00")
    with pytest.raises(ValueError, match="payload"):
        read_idx(tmp_path / "long.idx")
    (tmp_path / "tiny.idx").write_bytes(b"\x00")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "tiny.idx")
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent.idx")


def test_custom_root_with_uncompressed_files(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    labels = np.array([3, 0, 9, 1], dtype=np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", images, 0x08)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, 0x08)
    ds = FashionMNIST("test", root=tmp_path, normalize=False)
    assert len(ds) == 4 and [ds[i][1] for i in range(4)] == [3, 0, 9, 1]
    assert torch.allclose(ds[2][0][0], torch.from_numpy(images[2]).float() / 255)
    with pytest.raises(IndexError):
        ds[4]
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels[:3], 0x08)
    with pytest.raises(ValueError, match="4 images but"):
        load_fashion_mnist_arrays("test", root=tmp_path)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([1, 2, 3, 10], dtype=np.uint8), 0x08)
    with pytest.raises(ValueError, match="out of range"):
        load_fashion_mnist_arrays("test", root=tmp_path)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", images[:, :27], 0x08)
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        load_fashion_mnist_arrays("test", root=tmp_path)


def test_missing_data_names_package_and_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "no-fashion"
    monkeypatch.setattr(fm, "DEFAULT_ROOT", empty)
    with pytest.raises(DataMissingError) as info:
        FashionMNIST("train")
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert str(empty / "train-images-idx3-ubyte.gz") in message
    assert isinstance(info.value, FileNotFoundError)


def test_bad_split() -> None:
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_fashion_mnist_arrays("validation")  # type: ignore[arg-type]
