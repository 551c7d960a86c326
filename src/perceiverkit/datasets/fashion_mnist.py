"""Fashion-MNIST (Zalando's 28x28 grey-scale clothing images, 10 classes) read from IDX files.

The default location is the one filled by Debian's ``dataset-fashion-mnist`` package; any folder holding
``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` files (gzip-compressed or not) can be given as ``root``.
"""

from __future__ import annotations

import operator
import struct
from pathlib import Path
from typing import Literal, SupportsIndex

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ._common import DataMissingError, PathLike, read_maybe_gzip

__all__ = [
    "DEFAULT_ROOT",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "FashionMNIST",
    "load_fashion_mnist_arrays",
    "random_flip_crop",
    "read_idx",
]

Split = Literal["train", "test"]

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
APT_PACKAGE = "dataset-fashion-mnist"

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# Pixel mean and (population) standard deviation of the 60,000 training images scaled to [0, 1],
# computed from the IDX files. The test split is normalised with these too, as is standard.
FASHION_MNIST_MEAN = 0.2860405969887955
FASHION_MNIST_STD = 0.35302424451492254

# IDX type codes (third magic byte) → big-endian numpy dtypes, from the format's definition.
_IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}

_FILE_STEMS: dict[str, str] = {"train": "train", "test": "t10k"}


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or plain) into a native-byte-order numpy array.

    Raises ``ValueError`` naming the file if the magic number, type code, dimensions or payload size
    are wrong; a missing file raises ``FileNotFoundError``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"IDX file not found: {p}")
    data = read_maybe_gzip(p)
    if len(data) < 4:
        raise ValueError(f"{p}: not an IDX file (only {len(data)} bytes; expected a 4-byte magic number)")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise ValueError(f"{p}: bad IDX magic number {data[:4].hex()} (expected 0x0000 then type and ndim bytes)")
    if type_code not in _IDX_DTYPES:
        known = ", ".join(f"0x{code:02x}" for code in _IDX_DTYPES)
        raise ValueError(f"{p}: unknown IDX type code 0x{type_code:02x} (expected one of {known})")
    if ndim == 0:
        raise ValueError(f"{p}: IDX header declares 0 dimensions (expected at least 1)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{p}: truncated IDX header (expected {header} bytes for {ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        # Refuse both short and over-long payloads: either means the file is not what the header says.
        raise ValueError(
            f"{p}: IDX payload is {actual} bytes but the header's shape {shape} of {dtype.name} needs {expected}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    # astype copies into a writable, native-endian array (frombuffer's view is read-only and big-endian).
    return array.astype(dtype.newbyteorder("="))


def _idx_path(root: Path, name: str, what: str) -> Path:
    """The compressed file if present, else an uncompressed copy (as some mirrors ship), else an error."""
    for candidate in (root / f"{name}.gz", root / name):
        if candidate.is_file():
            return candidate
    raise DataMissingError(what, root / f"{name}.gz", APT_PACKAGE, "root")


def load_fashion_mnist_arrays(split: Split = "train", root: PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load one split as ``(images uint8 (N, 28, 28), labels int64 (N,))``.

    ``root`` defaults to :data:`DEFAULT_ROOT`. Raises :class:`DataMissingError` if the files are absent and
    ``ValueError`` if their contents are not Fashion-MNIST-shaped.
    """
    if split not in _FILE_STEMS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    base = Path(DEFAULT_ROOT if root is None else root)
    stem = _FILE_STEMS[split]
    images_path = _idx_path(base, f"{stem}-images-idx3-ubyte", f"Fashion-MNIST {split} images")
    labels_path = _idx_path(base, f"{stem}-labels-idx1-ubyte", f"Fashion-MNIST {split} labels")
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{images_path}: expected uint8 images of shape (N, 28, 28), got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected a 1-D uint8 label array, got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    if len(labels) and int(labels.max()) >= len(FASHION_MNIST_CLASSES):
        raise ValueError(f"{labels_path}: label {int(labels.max())} out of range 0-{len(FASHION_MNIST_CLASSES) - 1}")
    return images, labels.astype(np.int64)


def random_flip_crop(image: torch.Tensor, padding: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    """Randomly flip ``image`` (C, H, W) left-right (p=0.5), zero-pad by ``padding`` and crop back to (H, W).

    Randomness comes from ``generator`` or torch's global RNG, so ``torch.manual_seed`` (and DataLoader's
    per-worker seeding) makes it reproducible.
    """
    if image.ndim != 3:
        raise ValueError(f"expected an image of shape (C, H, W), got {tuple(image.shape)}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if torch.rand((), generator=generator) < 0.5:
        image = image.flip(-1)
    if padding == 0:
        return image
    height, width = image.shape[-2:]
    padded = F.pad(image, (padding, padding, padding, padding))
    top = int(torch.randint(0, 2 * padding + 1, (), generator=generator))
    left = int(torch.randint(0, 2 * padding + 1, (), generator=generator))
    return padded[:, top : top + height, left : left + width]


class FashionMNIST(Dataset[tuple[torch.Tensor, int]]):
    """Fashion-MNIST as ``(image float32 (1, 28, 28), label int)`` pairs.

    Pixels are scaled to [0, 1]; with ``normalize`` they are then standardised with the training set's
    mean and std. With ``augment`` each access applies :func:`random_flip_crop` (before normalising, so the
    padding is the images' black background).
    """

    classes: list[str]

    def __init__(
        self,
        split: Split = "train",
        root: PathLike | None = None,
        augment: bool = False,
        normalize: bool = True,
    ) -> None:
        images, labels = load_fashion_mnist_arrays(split, root)
        self.split = split
        self.augment = augment
        self.normalize = normalize
        self.images = torch.from_numpy(images)  # uint8 (N, 28, 28): 4x smaller than storing floats
        self.labels = torch.from_numpy(labels)
        self.classes = list(FASHION_MNIST_CLASSES)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: SupportsIndex) -> tuple[torch.Tensor, int]:
        i = operator.index(index)
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for FashionMNIST {self.split} split of {len(self)} images")
        image = self.images[i].to(torch.float32).div_(255.0).unsqueeze(0)
        if self.augment:
            image = random_flip_crop(image, padding=2)
        if self.normalize:
            image = (image - FASHION_MNIST_MEAN) / FASHION_MNIST_STD
        return image, int(self.labels[i])
