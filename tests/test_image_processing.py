"""ImageProcessor against Transformers' PerceiverImageProcessorPil (the oracle; its torchvision twin cannot
run beside this torch build), on PIL images, arrays and files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers.models.perceiver.image_processing_pil_perceiver as oracle_module
from PIL import Image

from perceiverkit import ImageProcessor
from perceiverkit.tasks import imagenet_class_names


@pytest.fixture(scope="module")
def oracle():
    return oracle_module.PerceiverImageProcessorPil()


@pytest.mark.parametrize("shape", [(300, 400, 3), (480, 320, 3), (224, 224, 3), (100, 90, 3), (257, 513, 3)])
def test_pixel_values_match_transformers(oracle, shape):
    image = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    expected = oracle(Image.fromarray(image), return_tensors="pt")["pixel_values"]
    for given in (image, Image.fromarray(image), torch.from_numpy(image).permute(2, 0, 1)):
        got = ImageProcessor()(given)["pixel_values"]
        assert got.shape == (1, 3, 224, 224)
        assert float((got - expected).abs().max()) < 1e-3


def test_real_photo_from_file(oracle, tmp_path):
    from skimage import data

    path = tmp_path / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(path)
    expected = oracle(Image.open(path).convert("RGB"), return_tensors="pt")["pixel_values"]
    got = ImageProcessor()([path, str(path)])["pixel_values"]
    assert got.shape == (2, 3, 224, 224)
    assert float((got - expected).abs().max()) < 1e-3


def test_grayscale_and_rgba_become_rgb():
    gray = np.full((50, 60), 128, dtype=np.uint8)
    rgba = np.zeros((50, 60, 4), dtype=np.uint8)
    assert ImageProcessor()([gray, Image.fromarray(rgba, "RGBA")])["pixel_values"].shape == (2, 3, 224, 224)


@pytest.mark.parametrize("image,error,match", [
    (np.zeros((10, 10, 3), dtype=np.float32), TypeError, "uint8"),
    (np.zeros((10, 10, 5), dtype=np.uint8), ValueError, r"\(height, width, 3\|4\)"),
    ("/no/such/image.png", FileNotFoundError, "no image file"),
    (42, TypeError, "PIL image, numpy array, torch tensor or file path"),
])
def test_bad_images(image, error, match):
    with pytest.raises(error, match=match):
        ImageProcessor()(image)


def test_not_an_image_file(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(ValueError, match="not an image file"):
        ImageProcessor()(path)


def test_imagenet_class_names():
    names = imagenet_class_names()
    assert len(names) == 1000
    assert names[0] == "tench, Tinca tinca" and names[281] == "tabby, tabby cat"
    assert names[999] == "toilet tissue, toilet paper, bathroom tissue"
