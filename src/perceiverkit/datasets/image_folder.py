"""Images in a class-per-subfolder layout (``root/<class>/<image>``), read with Pillow."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from pathlib import Path
from typing import SupportsIndex

import torch
from PIL import UnidentifiedImageError
from torch.utils.data import Dataset

from ..image_processing import ImageProcessor
from ._common import PathLike

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder", "check_image_size", "unreadable_image"]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def _visible(path: Path, top: Path) -> bool:
    """False for anything inside a hidden folder or itself hidden (``.DS_Store``, ``.ipynb_checkpoints``)."""
    return not any(part.startswith(".") for part in path.relative_to(top).parts)


class ImageFolder(Dataset[tuple[torch.Tensor, int]]):
    """``(image float32 (C, H, W), label int)`` for every image under ``root/<class>/``.

    Classes are the sub-folder names, sorted; images are found recursively inside each class folder (hidden
    files and folders skipped) and sorted by path. Each image goes through ``processor`` (an
    :class:`~perceiverkit.image_processing.ImageProcessor`), the settings a model trained on the folder saves
    and is served with. Without one: RGB (C=3) or, with ``grayscale``, one channel, scaled to [0, 1];
    ``image_size`` (an int for square, or ``(height, width)``) resizes with bilinear filtering, otherwise each
    image keeps its own size. Empty class folders and unreadable images raise errors naming the path.
    """

    classes: list[str]
    class_to_idx: dict[str, int]
    samples: list[tuple[Path, int]]

    def __init__(
        self,
        root: PathLike,
        image_size: int | tuple[int, int] | None = None,
        grayscale: bool = False,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        processor: ImageProcessor | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.root}")
        if isinstance(extensions, str):
            extensions = (extensions,)  # a lone ".png" would otherwise be read as its characters
        allowed = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
        if not allowed:
            raise ValueError("extensions must name at least one file extension")
        self.image_size = check_image_size(image_size)
        self.grayscale = grayscale
        if processor is not None and (image_size is not None or grayscale):
            raise ValueError("pass either processor or image_size/grayscale, not both: the processor sets both")
        self.processor = processor or ImageProcessor.plain(self.image_size, num_channels=1 if grayscale else 3)

        class_dirs = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not class_dirs:
            raise ValueError(f"{self.root}: no class sub-folders (expected the layout root/<class>/<image>)")
        self.classes = [p.name for p in class_dirs]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.samples = []
        for label, class_dir in enumerate(class_dirs):
            files = sorted(
                p
                for p in class_dir.rglob("*")
                if p.is_file() and p.suffix.lower() in allowed and _visible(p, class_dir)
            )
            if not files:
                raise ValueError(f"{class_dir}: class folder has no images with extensions {sorted(allowed)}")
            self.samples.extend((p, label) for p in files)

    @property
    def targets(self) -> list[int]:
        """Every sample's label, in order."""
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: SupportsIndex) -> tuple[torch.Tensor, int]:
        path, label = self.samples[operator.index(index)]
        return self.load(path), label

    def check_readable(self) -> None:
        """Check every image with :func:`unreadable_image` (its header, and Pillow's ``verify``, without decoding
        the pixels) and refuse the folder if any file is not an image Pillow can read, naming the first such file
        and how many there are."""
        bad = [(path, reason) for path, _ in self.samples if (reason := unreadable_image(path)) is not None]
        if bad:
            path, reason = bad[0]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise ValueError(f"cannot read image {path}{more}: {reason}; remove or replace it")

    def load(self, path: PathLike) -> torch.Tensor:
        """Read one image file as this dataset does: ``float32 (C, H, W)``, through its processor."""
        try:
            return torch.from_numpy(self.processor.preprocess(path))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise ValueError(f"cannot read image {path}: {exc}") from exc


def unreadable_image(source: PathLike | bytes) -> str | None:
    """Why Pillow cannot read the image file (or encoded bytes) ``source``, or None when its header names a known
    format and a size and Pillow's ``verify`` accepts the file: done on every file before training starts.

    ``verify`` reads the file without decoding pixels: for PNG it walks every chunk and checks its CRC, so a
    file cut short (an interrupted copy) is named here rather than at the batch that loads it, mid-training.
    Formats whose plugin does not verify (JPEG) are checked by their header only."""
    import io

    from PIL import Image

    def opened() -> Image.Image:
        return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)

    try:
        with opened() as image:
            width, height = image.size
        if width <= 0 or height <= 0:
            return f"its header gives a size of {width}×{height}"
        with opened() as image:  # verify leaves an image unusable: a second handle, closed right after
            image.verify()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:  # SyntaxError: some PIL plugins
        return str(error) or type(error).__name__
    return None


def check_image_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """``(height, width)`` from an int (square) or a pair of positive ints; None stays None (no resizing)."""
    if size is None:
        return None
    pair = (size, size) if isinstance(size, int) else tuple(size)
    # bool is an int subclass but never a meaningful size.
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair):
        raise ValueError(f"image_size must be a positive int or (height, width), got {size!r}")
    return pair[0], pair[1]
