"""Every example config under configs/ runs as shipped: copied next to a small generated data set of the layout
its comments describe, trained for 2 steps (``perceiverkit fit``) from another working directory (relative data
paths start at the config file's folder), and the saved model knows the data's class names."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import datasets
from perceiverkit import from_pretrained
from perceiverkit.cli import main

CONFIGS = Path(__file__).parents[2] / "configs"
WORDS = "the quick brown fox jumps over a lazy dog while seven ünïcödé owls watch quietly".split()


def _sentences(count: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=12)) for _ in range(count)]


def _picture(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 30, 3), dtype=np.uint8))


def _image_folder(data: Path) -> tuple[str, ...]:
    for k, name in enumerate(("bird", "cat", "dog")):
        (data / "images" / name).mkdir(parents=True)
        for i in range(6):
            _picture(10 * k + i).save(data / "images" / name / f"{i}.png")
    return ("bird", "cat", "dog")


def _text_files(data: Path) -> tuple[str, ...]:
    data.mkdir()
    with open(data / "reviews.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "label"), *((s, "pos" if i % 2 else "neg")
                                                      for i, s in enumerate(_sentences(40)))])
    return ("neg", "pos")


def _text_corpus(data: Path) -> None:
    data.mkdir()
    (data / "corpus.txt").write_text("\n\n".join(_sentences(400)), encoding="utf-8")


def _hf_text(data: Path) -> tuple[str, ...]:
    (data / "reviews").mkdir(parents=True)
    texts = _sentences(48)
    labels = ["good" if i % 2 else "bad" for i in range(48)]
    pq.write_table(pa.table({"text": texts[:40], "label": labels[:40]}), data / "reviews" / "train.parquet")
    pq.write_table(pa.table({"text": texts[40:], "label": labels[40:]}), data / "reviews" / "test.parquet")
    return ("bad", "good")


def _hf_images(data: Path) -> tuple[str, ...]:
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["round", "flat"])})
    datasets.Dataset.from_dict({"image": [_picture(i) for i in range(20)], "label": [i % 2 for i in range(20)]},
                               features=features).save_to_disk(str(data / "pictures"))
    return ("round", "flat")


def _hf_mlm(data: Path) -> None:
    data.mkdir()
    (data / "corpus.jsonl").write_text("".join(json.dumps({"text": s}) + "\n" for s in _sentences(300)))


EXAMPLES: dict[str, Callable[[Path], tuple[str, ...] | None]] = {
    "image-folder.yaml": _image_folder, "text-files.yaml": _text_files, "text-corpus.yaml": _text_corpus,
    "hf-text-classification.yaml": _hf_text, "hf-image-classification.yaml": _hf_images, "hf-mlm.yaml": _hf_mlm,
    "hf-perceiver-ar.yaml": _hf_mlm}


def test_every_example_config_is_tested():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_config_trains_two_steps(name, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(CONFIGS / name, folder / name)
    classes = EXAMPLES[name](folder / "data")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    code = main(["fit", "--config", str(folder / name), "--set", "trainer.max_steps=2", "data.batch_size=4",
                 "trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "trainer.limit_val_batches=1",
                 "trainer.log_every_n_steps=1", "data.options.cache_dir=hf-cache" if name.startswith("hf-") else
                 "seed=0", f"output_dir={tmp_path / 'run'}"])
    assert code == 0, capsys.readouterr().err[-2000:]
    model = from_pretrained(tmp_path / "run" / "model")
    if classes is not None:
        assert model.config.labels == classes
