"""The hf-dataset source on real files written by pyarrow and by ``datasets`` itself: split names from the data,
ClassLabel names as the model's labels, the seeded validation carve where only a train split exists, images
prepared as the saved processor prepares them, and MLM windows equal to the joined texts."""

from __future__ import annotations

import csv
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import datasets
from perceiverkit.config import ConfigError
from perceiverkit.datasets import ByteChunks
from perceiverkit.image_processing import ImageProcessor
from perceiverkit.tasks.text import MaskedLanguageModelConfig, SequenceClassifierConfig
from perceiverkit.tasks.vision import ImageClassifierConfig
from perceiverkit.train.config import DataSpec
from perceiverkit.train.datamodules import (
    HFImageClassificationData,
    HFTextClassificationData,
    HFTextCorpusData,
    carve_validation,
)

TEXTS = [f"sentence {i}: {'good' if i % 2 else 'poor'} ünïcödé" for i in range(40)]
LABELS = ["pos" if i % 2 else "neg" for i in range(40)]


def _spec(tmp_path, **options) -> DataSpec:
    return DataSpec(source="hf-dataset", batch_size=4, base_dir=str(tmp_path),
                    options={"cache_dir": "hf-cache", **options})


def _text(tmp_path, num_labels=2, **options) -> HFTextClassificationData:
    return HFTextClassificationData(_spec(tmp_path, **options), SequenceClassifierConfig(num_labels=num_labels))


def test_parquet_folder_splits_by_file_name_and_carves_validation(tmp_path):
    (tmp_path / "reviews").mkdir()
    pq.write_table(pa.table({"text": TEXTS, "label": LABELS}), tmp_path / "reviews" / "train.parquet")
    pq.write_table(pa.table({"text": ["held out"], "label": ["pos"]}), tmp_path / "reviews" / "test.parquet")
    data = _text(tmp_path, path="reviews", split_seed=2)
    data.setup("fit")
    assert data.label_names() == ("neg", "pos")
    train_idx, val_idx = carve_validation(40, 0.1, 2, "x")
    assert [data.val_set[i] for i in range(len(val_idx))] == [(TEXTS[j], int(LABELS[j] == "pos")) for j in val_idx]
    assert [data.train_set[i] for i in range(3)] == [(TEXTS[j], int(LABELS[j] == "pos")) for j in train_idx[:3]]
    assert data.test_set is None  # fit never reads the test split
    batch = next(iter(data.test_dataloader()))
    assert batch["labels"].tolist() == [1] and batch["input_ids"].shape[0] == 1
    # The converted Arrow files are memory-mapped, not held in memory.
    assert data.splits()["train"].cache_files and str(tmp_path / "hf-cache") in \
        data.splits()["train"].cache_files[0]["filename"]


def test_class_label_names_become_the_labels_and_the_validation_split_is_used(tmp_path):
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "y": datasets.ClassLabel(names=["negative", "positive", "neutral"])})
    ys = [i % 3 for i in range(40)]
    splits = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"sentence": TEXTS, "y": ys}, features=features),
        "validation": datasets.Dataset.from_dict({"sentence": ["a", "b"], "y": [2, 0]}, features=features)})
    splits.save_to_disk(str(tmp_path / "saved"))
    data = _text(tmp_path, 3, path="saved", text_column="sentence", label_column="y")
    data.setup("fit")
    assert data.label_names() == ("negative", "positive", "neutral")  # the ClassLabel's order, not sorted
    assert [data.val_set[i] for i in range(2)] == [("a", 2), ("b", 0)] and len(data.train_set) == 40
    with pytest.raises(ConfigError, match=r"has 3 classes \(negative, positive, neutral\) but "
                                          r"model.config.num_labels is 2"):
        _text(tmp_path, 2, path="saved", text_column="sentence", label_column="y").setup("fit")


def test_missing_columns_splits_and_data_are_one_line(tmp_path):
    (tmp_path / "train.jsonl").write_text("".join(json.dumps({"body": t, "label": y}) + "\n"
                                                  for t, y in zip(TEXTS, LABELS, strict=True)))
    with pytest.raises(ConfigError, match=r"the data set has no column 'text' \(columns: \['body', 'label'\]\); "
                                          r"set data.options.text_column to one of them"):
        _text(tmp_path, path="train.jsonl").setup("fit")
    with pytest.raises(ConfigError, match=r"the data set has no split 'dev' \(splits: \['train'\]\); set "
                                          r"data.options.val_split"):
        _text(tmp_path, path="train.jsonl", text_column="body", val_split="dev").setup("fit")
    with pytest.raises(ConfigError, match=rf"data.options.path: no path at {tmp_path}/absent.csv \(relative paths "
                                          rf"start at {tmp_path}\)"):
        _text(tmp_path, path="absent.csv").setup("fit")
    with pytest.raises(ConfigError, match=r"needs data\.options\.path .* or data\.options\.data_files"):
        _text(tmp_path).setup("fit")


def test_a_hub_name_without_a_network_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # as on a machine with no network, but at once
    with pytest.raises(ConfigError, match=r"no local data set at 'someone/reviews' and the hub cannot provide one "
                                          r"\(.*\); give a path to local files") as error:
        _text(tmp_path, path="someone/reviews").setup("fit")
    assert "\n" not in str(error.value)


def test_a_hub_name_with_no_connection_is_one_line_at_once(tmp_path, monkeypatch):
    """Online mode but no route to the hub (a machine without a network, or a mistyped local path read as a hub
    name): datasets would retry for ~30 s, printing a line a try; the source answers without calling it."""
    import socket

    def no_route(*args, **kwargs):
        raise OSError("Network is unreachable")

    def never(*args, **kwargs):
        raise AssertionError("load_dataset was called")

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(socket, "create_connection", no_route)
    monkeypatch.setattr(datasets, "load_dataset", never)
    with pytest.raises(ConfigError, match=r"no local data set at 'someone/reviews' and the hub cannot provide one "
                                          r"\(no connection to https?://.*\); give a path to local files") as error:
        _text(tmp_path, path="someone/reviews").setup("fit")
    assert "\n" not in str(error.value)


def _picture(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (10, 7, 3), dtype=np.uint8))


def _image_data(tmp_path, **options) -> HFImageClassificationData:
    config = ImageClassifierConfig(num_labels=2)
    return HFImageClassificationData(_spec(tmp_path, image_size=6, **options), config)


def test_images_are_prepared_as_the_saved_processor_prepares_them(tmp_path):
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["plain", "odd"])})
    pictures = [_picture(i) for i in range(12)]
    datasets.Dataset.from_dict({"image": pictures, "label": [i % 2 for i in range(12)]},
                               features=features).save_to_disk(str(tmp_path / "pictures"))
    data = _image_data(tmp_path, path="pictures", validation_size=4)
    data.setup("fit")
    _, val_idx = carve_validation(12, 4, 0, "x")
    pixels, label = data.val_set[1]
    expected = ImageProcessor.plain((6, 6), num_channels=3).preprocess(pictures[val_idx[1]])
    assert np.array_equal(pixels.numpy(), expected) and label == val_idx[1] % 2
    assert data.label_names() == ("plain", "odd") and len(data.train_set) == 8


def test_an_unreadable_image_row_is_named(tmp_path):
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")})
    rows = {"image": [{"bytes": _png(0), "path": None}, {"bytes": b"not an image", "path": None},
                      {"bytes": _png(2), "path": None}], "label": ["a", "b", "a"]}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "pictures"))
    with pytest.raises(ConfigError, match=r"cannot read the image in row 1 of the training split \('image'\)"):
        _image_data(tmp_path, path="pictures", validation_size=1).setup("fit")
    datasets.Dataset.from_dict({"image": ["x", "y"], "label": ["a", "b"]}).save_to_disk(str(tmp_path / "strings"))
    with pytest.raises(ConfigError, match=r"column 'image' of the training split holds .*not images"):
        _image_data(tmp_path, path="strings", validation_size=1).setup("fit")


def _png(seed: int) -> bytes:
    import io

    buffer = io.BytesIO()
    _picture(seed).save(buffer, format="PNG")
    return buffer.getvalue()


def test_mlm_windows_are_the_joined_texts(tmp_path):
    documents = [f"doc {i}: " + "ünïcödé words " * (i % 5 + 1) for i in range(200)]
    with open(tmp_path / "corpus.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_ALL)
        writer.writerows([("text",), *((d,) for d in documents)])
    spec = _spec(tmp_path, data_files={"train": "corpus.csv"}, sequence_length=34, val_fraction=0.1)
    data = HFTextCorpusData(spec, MaskedLanguageModelConfig(), seed=7)
    data.setup("fit")
    oracle_train = ByteChunks(documents, 32, "train", val_fraction=0.1, seed=7)
    oracle_val = ByteChunks(documents, 32, "val", val_fraction=0.1, seed=7)
    assert len(data.train_set) == len(oracle_train) and len(data.val_set) == len(oracle_val)
    assert [data.train_set[i][1] for i in range(0, len(oracle_train), 7)] == \
        [oracle_train[i] for i in range(0, len(oracle_train), 7)]
    assert [data.val_set[i][1] for i in range(len(oracle_val))] == [oracle_val[i] for i in range(len(oracle_val))]
    batch = data.collate([data.train_set[0], data.train_set[1]])
    assert batch["input_ids"].shape == (2, 34)


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl", ".parquet", ".arrow"])
def test_each_file_format_is_one_train_split_read_as_written(tmp_path, suffix):
    table = datasets.Dataset.from_dict({"text": TEXTS, "label": LABELS})
    path = tmp_path / f"reviews{suffix}"
    if suffix == ".arrow":  # a file of Arrow's streaming format, as datasets writes its own cache files
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.data.table.schema) as writer:
            writer.write_table(table.data.table)
    else:
        {".csv": table.to_csv, ".json": table.to_json, ".jsonl": table.to_json,
         ".parquet": table.to_parquet}[suffix](str(path))
    data = _text(tmp_path, path=path.name, validation_size=5)
    data.setup("fit")
    assert list(data.splits()) == ["train"]
    train_idx, val_idx = carve_validation(40, 5, 0, "x")
    assert [data.val_set[i][0] for i in range(5)] == [TEXTS[j] for j in val_idx]
    assert [data.train_set[i] for i in range(len(train_idx))] == [(TEXTS[j], int(LABELS[j] == "pos"))
                                                                  for j in train_idx]
    if suffix == ".arrow":  # mapped where it lies, not copied into a cache
        assert data.splits()["train"].cache_files[0]["filename"] == str(path)
