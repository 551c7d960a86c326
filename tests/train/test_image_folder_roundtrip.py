"""A model trained on an image folder is served exactly as it was validated: training (the real Lightning road,
a few steps) saves the folder's preprocessing and class names, and the reloaded model gives the validation
pipeline's logits through ``pipeline("image-classification")`` and ``perceiverkit classify-image``. The label
values of a CSV/JSONL file become a text classifier's class names the same way."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from perceiverkit import from_pretrained
from perceiverkit.cli import main
from perceiverkit.config import ConfigError
from perceiverkit.datasets import ImageFolder
from perceiverkit.image_processing import PREPROCESSOR_CONFIG, ImageProcessor
from perceiverkit.pipelines import pipeline
from perceiverkit.train import load_train_config, train
from perceiverkit.train.run import build_datamodule, build_model

CLASSES = ("circle", "square", "stripes")


def _drawing(kind: str, seed: int) -> np.ndarray:
    """A 20×16 RGB picture of ``kind`` with noise: sizes other than the model's, so the resize matters."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:20, :16]
    if kind == "circle":
        shape = (y - 10) ** 2 + (x - 8) ** 2 < 36
    elif kind == "square":
        shape = (abs(y - 10) < 6) & (abs(x - 8) < 6)
    else:
        shape = (x // 3) % 2 == 0
    image = np.where(shape[..., None], 220, 30) + rng.integers(-25, 25, (20, 16, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    for split, seeds in (("train", range(4)), ("val", range(10, 12))):
        for kind in CLASSES:
            (root / split / kind).mkdir(parents=True)
            for seed in seeds:
                Image.fromarray(_drawing(kind, seed)).save(root / split / kind / f"{seed}.png")
    return root


def _config(root: Path, out: Path, **options) -> Path:
    config = {
        "task": "image-classification",
        "model": {"config": {
            "num_labels": 3,
            "image": {"prep_type": "pixels", "in_channels": 3, "spatial_downsample": 1,
                      "position": {"kind": "fourier", "num_bands": 4, "max_resolution": [12, 12]}},
            "encoder": {"num_latents": 8, "d_latents": 32, "num_self_attends_per_block": 1,
                        "num_self_attention_heads": 2, "num_cross_attention_heads": 1}}},
        "data": {"source": "image-folder", "batch_size": 4,
                 "options": {"train_root": str(root / "train"), "val_root": str(root / "val"), **options}},
        "optim": {"lr": 0.003, "warmup_steps": 1},
        "trainer": {"max_steps": 3, "accelerator": "cpu", "enable_progress_bar": False, "log_every_n_steps": 1,
                    "limit_val_batches": 1},
        "output_dir": str(out),
    }
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_trained_on_a_folder_predicts_on_a_file_as_validated(folders, tmp_path, capsys):
    config = load_train_config(None, _config(folders, tmp_path / "run", image_size=12))
    result = train(config)
    saved = ImageProcessor.from_pretrained(result.model_dir)
    assert saved == ImageProcessor.plain((12, 12), num_channels=3)  # bilinear resize, [0, 1], no crop

    model = from_pretrained(result.model_dir)
    assert model.label_names == CLASSES and model.image_processor == saved
    validation = ImageFolder(folders / "val", processor=model.image_processor)
    files = [path for path, _ in validation.samples]
    with torch.no_grad():
        expected = model(pixel_values=torch.stack([validation[i][0] for i in range(len(files))])).logits
    probabilities = expected.softmax(-1)

    # The library's pipeline: the same logits, turned into named scores.
    results = pipeline("image-classification", model=str(result.model_dir), top_k=3)([str(f) for f in files])
    for row, ranked in zip(probabilities, results, strict=True):
        named = dict(zip(CLASSES, row.tolist(), strict=True))
        assert {r["label"]: r["score"] for r in ranked} == pytest.approx(named, abs=1e-6)

    # The command line: the same best class and score, by folder name.
    capsys.readouterr()  # training's own output
    assert main(["classify-image", *map(str, files), "--model", str(result.model_dir), "--top-k", "1"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == len(files)
    for line, path, row in zip(lines, files, probabilities, strict=True):
        best = int(row.argmax())
        assert line == f"{path}: {CLASSES[best]} ({row[best]:.1%})"


def test_processor_option_is_the_saved_preprocessing(folders, tmp_path):
    settings = {"size": 12, "do_center_crop": False, "resample": 3, "image_mean": [0.5], "image_std": [0.25]}
    config = load_train_config(None, _config(folders, tmp_path / "run", processor=settings))
    model = build_model(config)
    data = build_datamodule(config, model)
    data.setup("fit")
    data.prepare_model(model)
    processor = ImageProcessor(size=(12, 12), do_center_crop=False, resample=3, image_mean=(0.5,), image_std=(0.25,))
    assert model.image_processor == processor and model.label_names == CLASSES
    image, label = data.val_set[0]
    first = data.val_set.samples[0][0]
    assert label == 0 and torch.equal(image, processor([first])["pixel_values"][0])
    model.save_pretrained(tmp_path / "saved")
    assert ImageProcessor.from_pretrained(tmp_path / "saved") == processor
    assert (tmp_path / "saved" / PREPROCESSOR_CONFIG).is_file()


@pytest.mark.parametrize("options,message", [
    ({"image_size": 12, "grayscale": True}, "the images have 1 channel(s) but the model reads 3"),
    ({"image_size": 12, "processor": {"size": 12}}, "drop image_size and grayscale"),
    ({"processor": {"resample": "fancy"}}, "resample must be one of"),
])
def test_processor_options_that_do_not_fit_are_refused(folders, tmp_path, options, message):
    config = load_train_config(None, _config(folders, tmp_path / "run", **options))
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_datamodule(config, build_model(config)).setup("fit")


def test_folders_with_other_classes_are_refused(folders, tmp_path):
    (tmp_path / "val" / "circle").mkdir(parents=True)
    Image.fromarray(_drawing("circle", 0)).save(tmp_path / "val" / "circle" / "0.png")
    config = load_train_config(None, _config(folders, tmp_path / "run", image_size=12),
                               [f"data.options.val_root={tmp_path / 'val'}"])
    with pytest.raises(ConfigError, match="validation folder's classes"):
        build_datamodule(config, build_model(config)).setup("fit")


def test_text_file_label_values_become_the_class_names(tmp_path):
    from perceiverkit.train.config import DataSpec
    from perceiverkit.train.datamodules import LabelledTextFilesData

    rows = [("kick-off at noon", "sport"), ("basil and garlic", "food"), ("a late goal", "sport"),
            ("stock prices fell", "markets")]
    for name in ("train", "val"):
        (tmp_path / f"{name}.jsonl").write_text("".join(f'{{"text": "{t}", "label": "{y}"}}\n' for t, y in rows))
    config = load_train_config("text-classification", None, [
        "data.source=text-files", f"data.options.train_path={tmp_path / 'train.jsonl'}",
        f"data.options.val_path={tmp_path / 'val.jsonl'}", "model.config.num_labels=3",
        "model.config.max_position_embeddings=32", "model.config.d_model=16", "model.config.encoder.num_latents=4",
        "model.config.encoder.d_latents=16", "model.config.encoder.num_self_attends_per_block=1",
        "model.config.encoder.num_self_attention_heads=2", "model.config.encoder.num_cross_attention_heads=1"])
    model = build_model(config)
    data = build_datamodule(config, model)
    assert isinstance(data, LabelledTextFilesData) and isinstance(config.data, DataSpec)
    data.setup("fit")
    data.prepare_model(model)
    assert model.config.labels == ("food", "markets", "sport")  # label index i is the i-th sorted value
    assert data.train_set[0] == ("kick-off at noon", 2)
    model.save_pretrained(tmp_path / "model")
    assert pipeline("text-classification", model=str(tmp_path / "model"))("hello")[0]["label"] in model.config.labels
