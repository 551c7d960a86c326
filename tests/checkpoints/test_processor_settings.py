"""Preprocessing travels with the model: an image classifier's ``preprocessor_config.json`` and a text
classifier's tokenizer are saved, restored by ``from_pretrained`` and used by pipelines and the command line;
checkpoints saved without them load with settings inferred from the model's config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from perceiverkit import EncoderConfig, from_pretrained
from perceiverkit.cli import main
from perceiverkit.config import PositionEncodingConfig
from perceiverkit.image_processing import PREPROCESSOR_CONFIG, ImageProcessor
from perceiverkit.pipelines import pipeline
from perceiverkit.processors.image import ImagePreprocessorConfig
from perceiverkit.tasks import ImageClassifier, ImageClassifierConfig, SequenceClassifier, SequenceClassifierConfig
from perceiverkit.tasks.vision import default_image_processor
from perceiverkit.word_tokenizer import WordHashTokenizer

GARMENT = Path(__file__).parents[1] / "data" / "fashion-mnist-test-0-ankle-boot.png"  # test image 0, an ankle boot
TINY = EncoderConfig(num_latents=4, d_latents=16, num_self_attends_per_block=1, num_self_attention_heads=2,
                     num_cross_attention_heads=1)


def _grey_classifier(labels=("left", "right")) -> ImageClassifier:
    image = ImagePreprocessorConfig(prep_type="pixels", in_channels=1, spatial_downsample=1,
                                    position=PositionEncodingConfig(kind="fourier", num_bands=2, max_resolution=(8, 8)))
    return ImageClassifier(ImageClassifierConfig(image=image, num_labels=2, labels=labels, encoder=TINY)).eval()


def test_image_settings_are_saved_and_restored(tmp_path):
    model = _grey_classifier()
    processor = ImageProcessor.plain((8, 8), num_channels=1, resample="bicubic", mean=(0.4,), std=(0.2,))
    model.image_processor = processor
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / PREPROCESSOR_CONFIG).read_text())["num_channels"] == 1
    loaded = from_pretrained(tmp_path)
    assert loaded.image_processor == processor and loaded.label_names == ("left", "right")

    # The pipeline and the command line read a file through the saved settings, not ImageNet's.
    picture = np.random.default_rng(0).integers(0, 256, (13, 11, 3), dtype=np.uint8)
    Image.fromarray(picture).save(tmp_path / "picture.png")
    with torch.no_grad():
        logits = model(pixel_values=processor([tmp_path / "picture.png"])["pixel_values"]).logits
    scores = logits.softmax(-1)[0].tolist()
    results = pipeline("image-classification", model=str(tmp_path), top_k=2)(str(tmp_path / "picture.png"))
    assert {r["label"]: r["score"] for r in results} == pytest.approx({"left": scores[0], "right": scores[1]})


def test_checkpoints_without_settings_infer_them_from_the_config(tmp_path):
    model = _grey_classifier(labels=None)
    model.save_pretrained(tmp_path)
    (tmp_path / PREPROCESSOR_CONFIG).unlink()  # as saved before settings travelled
    loaded = from_pretrained(tmp_path)
    assert loaded.image_processor == ImageProcessor.plain((8, 8), num_channels=1)
    assert loaded.label_names == ("LABEL_0", "LABEL_1")
    imagenet = ImagePreprocessorConfig(prep_type="conv1x1", in_channels=3, spatial_downsample=1,
                                       position=PositionEncodingConfig(kind="trainable", num_channels=8),
                                       position_grid=(224, 224))
    assert default_image_processor(imagenet) == ImageProcessor()  # Transformers' ImageNet checkpoints


def test_a_processor_with_the_wrong_channel_count_is_refused():
    with pytest.raises(ValueError, match="the image processor gives 3 channels but the model reads 1"):
        _grey_classifier().image_processor = ImageProcessor()


def test_text_tokenizer_is_saved_and_restored(tmp_path):
    words = {"kind": "words", "num_buckets": 64, "ngrams": 1}
    vocab = WordHashTokenizer(num_buckets=64).vocab_size
    model = SequenceClassifier(SequenceClassifierConfig(vocab_size=vocab, max_position_embeddings=16, d_model=16,
                                                        num_labels=2, labels=("no", "yes"), encoder=TINY)).eval()
    model.tokenizer_settings = words
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "perceiverkit.json").read_text())["processor"] == {"tokenizer": words}
    loaded = from_pretrained(tmp_path)
    assert loaded.tokenizer_settings == words
    classify = pipeline("text-classification", model=str(tmp_path), top_k=2)
    assert isinstance(classify.tokenizer, WordHashTokenizer) and classify.tokenizer.ngrams == 1
    expected = WordHashTokenizer(num_buckets=64, ngrams=1, model_max_length=16)(["good news"], padding=True)
    with torch.no_grad():
        scores = model(**expected).logits.softmax(-1)[0].tolist()
    expected_scores = dict(zip(("no", "yes"), scores, strict=True))
    assert {r["label"]: r["score"] for r in classify("good news")} == pytest.approx(expected_scores)
    with pytest.raises(ValueError, match="has 262 ids but the model reads"):
        model.tokenizer_settings = {"kind": "bytes"}


def test_shipped_fashion_mnist_classifier_classifies_a_png_from_the_command_line(capsys):
    assert main(["classify-image", str(GARMENT), "--model", "fashion-mnist-classifier", "--top-k", "2"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"{GARMENT}: Ankle boot (")


def test_shipped_fashion_mnist_settings_are_its_training_preprocessing():
    from perceiverkit.datasets.fashion_mnist import FASHION_MNIST_MEAN, FASHION_MNIST_STD

    model = from_pretrained("fashion-mnist-classifier")
    garment = np.array(Image.open(GARMENT))
    assert garment.shape == (28, 28)
    # FashionMNIST's test items: uint8 / 255, standardised with the training set's mean and std.
    expected = (torch.from_numpy(garment).float() / 255 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD
    got = model.image_processor([GARMENT])["pixel_values"]
    assert got.shape == (1, 1, 28, 28)
    torch.testing.assert_close(got[0, 0], expected, rtol=0, atol=1e-6)
