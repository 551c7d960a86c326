"""Image classification and flow pipelines, and their command-line commands, on tiny saved models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from perceiverkit import (
    EncoderConfig,
    ImageClassifier,
    ImageClassifierConfig,
    OpticalFlow,
    OpticalFlowConfig,
    PositionEncodingConfig,
)
from perceiverkit.cli import main
from perceiverkit.pipelines import FlowEstimation, ImageClassification
from perceiverkit.processors import ImagePreprocessorConfig

TINY = EncoderConfig(num_latents=4, d_latents=16, num_self_attends_per_block=1, num_self_attention_heads=2,
                     num_cross_attention_heads=1)


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    config = ImageClassifierConfig(
        image=ImagePreprocessorConfig(prep_type="conv", spatial_downsample=4, out_channels=8,
                                      position=PositionEncodingConfig(kind="fourier", num_bands=4,
                                                                      max_resolution=(56, 56))),
        encoder=TINY, num_labels=3, labels=("cat", "dog", "bird"))
    return ImageClassifier(config).save_pretrained(tmp_path_factory.mktemp("classifier"))


@pytest.fixture(scope="module")
def flow_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    config = OpticalFlowConfig(train_size=(12, 16), num_bands=4, patch_features=8, tile_overlap=4, encoder=TINY)
    return OpticalFlow(config).save_pretrained(tmp_path_factory.mktemp("flow"))


def _images(tmp_path: Path, count: int, size=(40, 50)) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = tmp_path / f"image_{i}.png"
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_classification_pipeline_batches(classifier_dir, tmp_path):
    model = ImageClassifier.from_pretrained(classifier_dir)
    paths = _images(tmp_path, 5)
    results = ImageClassification(model, batch_size=2)(paths, top_k=2)
    single = ImageClassification(model, batch_size=1)(paths[3], top_k=3)  # one image: its list, as Transformers
    assert len(results) == 5 and all(len(r) == 2 for r in results)
    assert all(set(r) == {"label", "score"} for r in single)  # Transformers' result names
    assert {r["label"] for r in single} == {"cat", "dog", "bird"}
    assert abs(sum(r["score"] for r in single) - 1) < 1e-5
    assert results[3][0]["label"] == single[0]["label"] and abs(results[3][0]["score"] - single[0]["score"]) < 1e-5
    # the scores are the softmax of the model's logits on the processor's pixels (the oracle: the model itself)
    pixels = ImageClassification(model).processor([paths[3]])["pixel_values"]
    with torch.no_grad():
        expected = model(pixel_values=pixels).logits.softmax(-1)[0]
    assert [r["score"] for r in single] == pytest.approx(sorted(expected.tolist(), reverse=True), abs=1e-5)


def test_classification_predict_takes_one_image_as_a_list_of_one(classifier_dir, tmp_path):
    # .predict always nests; a bare path is one image, never a sequence of one-character file names
    classify = ImageClassification(ImageClassifier.from_pretrained(classifier_dir), top_k=2)
    (path,) = _images(tmp_path, 1)
    assert classify.predict(str(path)) == classify.predict([str(path)]) == [classify(str(path))]


def test_classify_image_cli(classifier_dir, tmp_path, capsys):
    paths = _images(tmp_path, 3)
    assert main(["classify-image", *map(str, paths), "--model", str(classifier_dir), "--top-k", "2",
                 "--batch-size", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all("%)" in line for line in lines)


def test_classify_image_cli_wrong_model_kind(flow_dir, tmp_path, capsys):
    assert main(["classify-image", str(_images(tmp_path, 1)[0]), "--model", str(flow_dir)]) == 2
    assert "holds a model for task 'optical-flow'; expected task 'image-classification'" in capsys.readouterr().err


def test_flow_pipeline_shifted_image_any_size(flow_dir):
    model = OpticalFlow.from_pretrained(flow_dir)
    image = np.random.default_rng(1).integers(0, 256, (30, 41, 3), dtype=np.uint8)
    flow = FlowEstimation(model)(image, np.roll(image, 2, axis=1))
    assert flow.shape == (30, 41, 2) and np.isfinite(flow).all()
    with pytest.raises(ValueError, match="same size"):
        FlowEstimation(model)(image, image[:20])


def test_flow_cli_writes_pngs_for_each_pair(flow_dir, tmp_path, capsys):
    frames = _images(tmp_path, 3, size=(20, 30))
    out = tmp_path / "out" / "flow.png"
    assert main(["flow", *map(str, frames), "-o", str(out), "--model", str(flow_dir), "--figure"]) == 0
    written = sorted(p.name for p in out.parent.iterdir())
    assert written == ["flow_0000.png", "flow_0000_figure.png", "flow_0001.png", "flow_0001_figure.png"]
    assert Image.open(out.parent / "flow_0000.png").size == (30, 20)
    assert "mean |flow|" in capsys.readouterr().out


def test_flow_cli_missing_frame(flow_dir, capsys):
    assert main(["flow", "/no/a.png", "/no/b.png", "--model", str(flow_dir)]) == 2
    assert "no image file at /no/a.png" in capsys.readouterr().err
