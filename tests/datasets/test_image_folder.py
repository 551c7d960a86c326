from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from perceiverkit.datasets import ImageFolder


def _save(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    rgb = np.zeros((4, 6, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    _save(tmp_path / "zebra" / "b.png", rgb)
    _save(tmp_path / "zebra" / "nested" / "c.bmp", np.full((5, 5, 3), 128, dtype=np.uint8))
    _save(tmp_path / "ant" / "a.png", np.full((3, 3), 255, dtype=np.uint8))  # grayscale source
    _save(tmp_path / "ant" / "rgba.png", np.zeros((2, 2, 4), dtype=np.uint8))
    (tmp_path / "ant" / "readme.txt").write_text("not an image")
    _save(tmp_path / "ant" / ".hidden.png", np.zeros((2, 2), dtype=np.uint8))
    (tmp_path / ".cache").mkdir()
    (tmp_path / "stray.png").write_bytes(b"")  # files at the top level are not classes
    return tmp_path


def test_layout_and_items(tree: Path) -> None:
    ds = ImageFolder(tree)
    assert ds.classes == ["ant", "zebra"] and ds.class_to_idx == {"ant": 0, "zebra": 1}
    assert [p.relative_to(tree).as_posix() for p, _ in ds.samples] == [
        "ant/a.png", "ant/rgba.png", "zebra/b.png", "zebra/nested/c.bmp",
    ]
    assert ds.targets == [0, 0, 1, 1] and len(ds) == 4
    white, label = ds[0]
    assert label == 0 and white.shape == (3, 3, 3) and torch.all(white == 1.0)
    red, label = ds[2]
    assert label == 1 and red.shape == (3, 4, 6) and red.dtype == torch.float32
    assert red[:, 0, 0].tolist() == [1.0, 0.0, 0.0] and red[:, 1:, :].max() == 0.0
    assert ds[3][0].shape == (3, 5, 5) and ds[3][0][0, 0, 0].item() == pytest.approx(128 / 255)


def test_resize_grayscale_and_extensions(tree: Path) -> None:
    ds = ImageFolder(tree, image_size=(7, 9), grayscale=True)
    for i in range(len(ds)):
        image, _ = ds[i]
        assert image.shape == (1, 7, 9) and 0.0 <= image.min() and image.max() <= 1.0
    assert ImageFolder(tree, image_size=8)[1][0].shape == (3, 8, 8)
    with pytest.raises(ValueError, match="image_size"):
        ImageFolder(tree, image_size=(0, 4))
    assert len(ImageFolder(tree, extensions=("PNG",))) == 3  # case-insensitive, dot optional
    with pytest.raises(ValueError, match=re.escape(f"{tree / 'ant'}: class folder has no images")):
        ImageFolder(tree, extensions=(".bmp",))


def test_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "absent"))):
        ImageFolder(tmp_path / "absent")
    with pytest.raises(ValueError, match="no class sub-folders"):
        ImageFolder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'empty'}: class folder has no images")):
        ImageFolder(tmp_path)
    broken = tmp_path / "empty" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    ds = ImageFolder(tmp_path)
    with pytest.raises(ValueError, match=re.escape(f"cannot read image {broken}")):
        ds[0]


def test_a_truncated_png_is_named_before_any_pixel_is_read(tmp_path: Path) -> None:
    """A PNG cut short (an interrupted copy) has a valid header: it used to pass the check and stop training at the
    batch that decoded it. Pillow itself is the oracle: it cannot load the cut file, and loads the whole one."""
    rng = np.random.default_rng(0)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    whole = tmp_path / "a" / "whole.png"
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(whole)
    Image.open(whole).load()
    cut = tmp_path / "b" / "cut.png"
    cut.write_bytes(whole.read_bytes()[:400])
    with pytest.raises(OSError):
        Image.open(cut).load()
    assert Image.open(cut).size == (40, 40)  # the header alone looks fine
    with pytest.raises(ValueError, match=re.escape(f"cannot read image {cut}") + ".*remove or replace it"):
        ImageFolder(tmp_path).check_readable()
    cut.write_bytes(whole.read_bytes())
    ImageFolder(tmp_path).check_readable()
