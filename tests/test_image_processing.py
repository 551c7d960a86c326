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


# --- settings: preprocessor_config.json, other recipes, grayscale and any channel count ---------------------------

def _oracle_with(processor: ImageProcessor):
    """Transformers' processor built from our settings (its keys, less the channel count it does not hold)."""
    settings = {k: v for k, v in processor.to_dict().items() if k not in ("num_channels", "image_processor_type")}
    return oracle_module.PerceiverImageProcessorPil(**settings)


NON_DEFAULT = [
    ImageProcessor(size=(40, 56), crop_size=(48, 60), resample=2, image_mean=(0.3, 0.4, 0.5), image_std=(0.2,) * 3),
    ImageProcessor(size=(33, 33), do_center_crop=False, resample=0, do_normalize=False),
    ImageProcessor(size=(64, 48), crop_size=(32, 40), resample=1, rescale_factor=1 / 127.5,
                   image_mean=(1.0, 1.0, 1.0), image_std=(1.0, 1.0, 1.0)),  # a crop larger than the image: padding
    ImageProcessor.plain((28, 28), num_channels=1, mean=(0.286,), std=(0.353,)),
]


@pytest.mark.parametrize("processor", NON_DEFAULT, ids=range(len(NON_DEFAULT)))
def test_other_settings_match_transformers(processor):
    channels = processor.num_channels
    image = np.random.default_rng(channels).integers(0, 256, (45, 70, channels)[:3 if channels > 1 else 2],
                                                     dtype=np.uint8)
    expected = _oracle_with(processor)(Image.fromarray(image), return_tensors="pt")["pixel_values"]
    got = processor(image)["pixel_values"]
    assert got.shape == expected.shape == (1, channels, *processor.size)
    assert float((got - expected).abs().max()) < 1e-5


@pytest.mark.parametrize("processor", [ImageProcessor(), *NON_DEFAULT], ids=range(len(NON_DEFAULT) + 1))
def test_settings_round_trip(processor, tmp_path):
    assert ImageProcessor.from_dict(processor.to_dict()) == processor
    path = processor.save_pretrained(tmp_path)
    assert path.name == "preprocessor_config.json"
    assert ImageProcessor.from_pretrained(tmp_path) == processor


def test_reads_transformers_preprocessor_configs(oracle, tmp_path):
    # What Transformers writes today, and the older feature-extractor file of the published checkpoints.
    oracle.save_pretrained(tmp_path)
    assert ImageProcessor.from_pretrained(tmp_path) == ImageProcessor()
    legacy = {"crop_size": 256, "do_center_crop": True, "do_normalize": True, "do_resize": True,
              "feature_extractor_type": "PerceiverFeatureExtractor", "image_mean": [0.485, 0.456, 0.406],
              "image_std": [0.229, 0.224, 0.225], "resample": 3, "size": 224}
    assert ImageProcessor.from_dict(legacy) == ImageProcessor()


def test_transformers_reads_ours(tmp_path):
    processor = NON_DEFAULT[0]
    processor.save_pretrained(tmp_path)
    loaded = oracle_module.PerceiverImageProcessorPil.from_pretrained(tmp_path)
    image = np.random.default_rng(1).integers(0, 256, (50, 80, 3), dtype=np.uint8)
    expected = loaded(Image.fromarray(image), return_tensors="pt")["pixel_values"]
    assert float((processor(image)["pixel_values"] - expected).abs().max()) < 1e-5


def test_grayscale_files_and_colour_inputs_for_a_one_channel_model(tmp_path):
    processor = ImageProcessor.plain((10, 10), num_channels=1)
    colour = np.random.default_rng(2).integers(0, 256, (12, 14, 3), dtype=np.uint8)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    grey = np.asarray(Image.fromarray(colour).convert("L"))
    expected = processor(grey)["pixel_values"]
    for given in (colour, tmp_path / "colour.png", Image.fromarray(colour), torch.from_numpy(colour).permute(2, 0, 1)):
        assert torch.equal(processor(given)["pixel_values"], expected)
    assert expected.shape == (1, 1, 10, 10)


def test_any_channel_count_from_arrays_and_tensors():
    # No resize and no crop: the closed form (pixels / 255 - mean) / std, channel by channel.
    mean, std = (0.1, 0.2, 0.3, 0.4, 0.5), (0.5, 0.4, 0.3, 0.2, 0.1)
    processor = ImageProcessor(do_resize=False, do_center_crop=False, image_mean=mean, image_std=std, num_channels=5)
    image = np.random.default_rng(3).integers(0, 256, (6, 7, 5), dtype=np.uint8)
    expected = (torch.from_numpy(image).double() / 255 - torch.tensor(mean)) / torch.tensor(std)
    for given in (image, torch.from_numpy(image).permute(2, 0, 1)):
        got = processor(given)["pixel_values"]
        assert got.shape == (1, 5, 6, 7)
        torch.testing.assert_close(got[0].double(), expected.permute(2, 0, 1), rtol=0, atol=1e-6)
    # Resizing a 5-channel image resizes each channel as its own float image.
    resized = ImageProcessor(size=(3, 4), do_center_crop=False, do_normalize=False, resample=2, num_channels=5)
    single = ImageProcessor(size=(3, 4), do_center_crop=False, do_normalize=False, resample=2, num_channels=1)
    got = resized(image)["pixel_values"][0]
    for c in range(5):
        reference = np.asarray(Image.fromarray(image[..., c].astype(np.float32), "F").resize((4, 3), 2)) / 255
        torch.testing.assert_close(got[c].double(), torch.from_numpy(reference).double(), rtol=0, atol=1e-6)
        assert float((got[c] - single(image[..., c])["pixel_values"][0, 0]).abs().max()) < 1 / 255  # uint8 rounding


@pytest.mark.parametrize("settings,match", [
    ({"resample": "fancy"}, "resample must be one of"),
    ({"size": {"shortest_edge": 224}}, "size must be an int, \\[height, width\\]"),
    ({"image_mean": [0.5, 0.5]}, "image_mean must hold 1 or num_channels=3 values, got 2"),
    ({"image_std": [0.0]}, "image_std must not contain 0"),
    ({"num_channels": 0}, "num_channels must be a positive int"),
])
def test_bad_settings_are_one_line(settings, match):
    with pytest.raises(ValueError, match=match):
        ImageProcessor.from_dict(settings)


def test_inputs_that_do_not_fit_the_channel_count(tmp_path):
    path = tmp_path / "colour.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)
    with pytest.raises(ValueError, match=r"cannot give 5 channels \(Pillow holds 1 to 4\)"):
        ImageProcessor(num_channels=5, do_normalize=False)(path)
    with pytest.raises(ValueError, match=r"\(height, width, 5\), got \(4, 4, 3\)"):
        ImageProcessor(num_channels=5, do_normalize=False)(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match=r"no preprocessor_config\.json at"):
        ImageProcessor.from_pretrained(tmp_path)
