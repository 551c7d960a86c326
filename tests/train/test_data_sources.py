"""A user's own data, checked at setup before anything is written: required options, paths relative to the config
file, the class count against the model, unreadable images, bad CSV/JSONL files; the optional seeded validation
carve; and streaming sources that read the files' real bytes and resume exactly."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from perceiverkit.cli import main
from perceiverkit.config import ConfigError
from perceiverkit.tasks.text import MaskedLanguageModelConfig, SequenceClassifierConfig
from perceiverkit.tasks.vision import ImageClassifierConfig
from perceiverkit.train.config import DataSpec
from perceiverkit.train.datamodules import (
    ImageFolderData,
    LabelledTextFilesData,
    TextCorpusData,
    carve_validation,
)
from perceiverkit.train.samplers import EpochSeededSampler

CLASSES = ("cat", "dog", "owl")
#: A small image classifier's settings (num_labels aside) for 8×8 RGB inputs.
TINY_IMAGE_MODEL = {"image": {"prep_type": "pixels", "in_channels": 3, "spatial_downsample": 1,
                              "position": {"kind": "fourier", "num_bands": 4, "max_resolution": [8, 8]}},
                    "encoder": {"num_latents": 8, "d_latents": 32, "num_self_attends_per_block": 1,
                                "num_self_attention_heads": 2, "num_cross_attention_heads": 1}}


def _images(root: Path, per_class: int = 5, size: tuple[int, int] = (9, 7)) -> Path:
    rng = np.random.default_rng(0)
    for name in CLASSES:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def _image_data(base: Path, num_labels: int = 3, **options) -> ImageFolderData:
    spec = DataSpec(source="image-folder", batch_size=2, options=options, base_dir=str(base))
    return ImageFolderData(spec, ImageClassifierConfig(num_labels=num_labels), seed=0)


def test_image_folder_paths_start_at_the_config_folder_and_validation_is_carved(tmp_path, monkeypatch):
    _images(tmp_path / "project" / "pictures")
    monkeypatch.chdir(tmp_path)  # elsewhere: the relative path must not be read from here
    data = _image_data(tmp_path / "project", train_root="pictures", image_size=8, validation_size=0.2,
                       split_seed=4)
    data.setup("fit")
    assert data.label_names() == CLASSES
    expected_train, expected_val = carve_validation(15, 0.2, 4, "x")
    assert data.train_set.indices == expected_train and data.val_set.indices == expected_val
    assert len(expected_val) == 3 and not set(expected_train) & set(expected_val)
    image, label = data.val_set[0]
    assert image.shape == (3, 8, 8) and label == data.train_set.dataset.samples[expected_val[0]][1]
    default = _image_data(tmp_path / "project", train_root="pictures", image_size=8)
    default.setup("fit")
    assert len(default.val_set) == 2  # a tenth of 15, rounded


@pytest.mark.parametrize(("options", "num_labels", "message"), [
    ({"train_root": "pictures"}, 3, "needs data.options.image_size (e.g. 64, or [height, width]"),
    ({"image_size": 8}, 3, "data source 'image-folder' needs data.options.train_root (a folder)"),
    ({"train_root": "nowhere", "image_size": 8}, 3, "data.options.train_root: no folder at {base}/nowhere "
                                                    "(relative paths start at {base})"),
    ({"train_root": "pictures", "image_size": 8}, 2, "the image folder {base}/pictures has 3 classes (cat, dog, "
                                                     "owl) but model.config.num_labels is 2; set "
                                                     "model.config.num_labels: 3"),
    ({"train_root": "pictures", "image_size": 8}, 5, "has 3 classes (cat, dog, owl) but model.config.num_labels "
                                                     "is 5"),
    ({"train_root": "pictures", "val_root": "pictures", "validation_size": 0.1, "image_size": 8}, 3,
     "drop it when val_root is given"),
])
def test_image_folder_refusals_are_one_line(tmp_path, options, num_labels, message):
    _images(tmp_path / "pictures")
    with pytest.raises(ConfigError) as error:
        _image_data(tmp_path, num_labels, **options).setup("fit")
    assert str(error.value).startswith(message.format(base=tmp_path)) or message.format(base=tmp_path) in str(
        error.value), str(error.value)
    assert "\n" not in str(error.value)


def test_an_unreadable_image_is_named(tmp_path):
    root = _images(tmp_path / "pictures")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    (root / "owl" / "notes.jpg").write_text("shopping list")
    with pytest.raises(ConfigError, match=rf"cannot read image {root / 'dog' / 'broken.png'} \(and 1 more\): .*; "
                                          "remove or replace it"):
        _image_data(tmp_path, train_root="pictures", image_size=8).setup("fit")


def _write_csv(path: Path, rows, header=("text", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def _text_data(base: Path, num_labels: int = 3, num_workers: int = 0, **options) -> LabelledTextFilesData:
    spec = DataSpec(source="text-files", batch_size=4, num_workers=num_workers, options=options, base_dir=str(base))
    return LabelledTextFilesData(spec, SequenceClassifierConfig(num_labels=num_labels), seed=0)


ROWS = [(f"review number {i} with words", ["bad", "good", "meh"][i % 3]) for i in range(30)]


def test_text_files_read_records_as_written_and_carve_validation(tmp_path):
    _write_csv(tmp_path / "reviews.csv", ROWS)
    data = _text_data(tmp_path, train_path="reviews.csv", validation_size=6, split_seed=1)
    data.setup("fit")
    assert data.label_names() == ("bad", "good", "meh")
    train_idx, val_idx = carve_validation(30, 6, 1, "x")
    assert [data.val_set[i] for i in range(6)] == [(ROWS[j][0], ["bad", "good", "meh"].index(ROWS[j][1]))
                                                   for j in val_idx]
    assert len(data.train_set) == 24 and data.train_set.indices == train_idx
    batch = data.collate([data.train_set[0], data.train_set[1]])
    assert batch["input_ids"].shape[0] == 2 and batch["labels"].tolist() == [ROWS[j][1] == "good" or
                                                                              2 * (ROWS[j][1] == "meh")
                                                                              for j in train_idx[:2]]


def test_integer_labels_are_ordered_as_numbers(tmp_path):
    path = tmp_path / "train.jsonl"
    labels = [2, 10, 1, 10, 2, 1, 10]
    path.write_text("".join(json.dumps({"body": f"t{i}", "y": y}) + "\n" for i, y in enumerate(labels)))
    data = _text_data(tmp_path, train_path="train.jsonl", val_path="train.jsonl", text_field="body",
                      label_field="y")
    data.setup("fit")
    assert data.label_names() == ("1", "2", "10")
    assert [data.train_set[i][1] for i in range(len(labels))] == [{1: 0, 2: 1, 10: 2}[y] for y in labels]


@pytest.mark.parametrize(("write", "message"), [
    (lambda p: p.write_text(""), "{path}: empty CSV file (expected a header line naming the columns text, label"),
    (lambda p: _write_csv(p, ROWS, header=None), "{path}: the header line ['review number 0 with words', 'bad'] "
                                                 "names no 'text' column; start the file with a header line"),
    (lambda p: _write_csv(p, ROWS, header=("text", "sentiment")), "{path}: the header line ['text', 'sentiment'] "
                                                                  "names no 'label' column"),
])
def test_bad_csv_is_one_line_naming_the_file(tmp_path, write, message):
    path = tmp_path / "train.csv"
    write(path)
    with pytest.raises(ConfigError) as error:
        _text_data(tmp_path, train_path="train.csv").setup("fit")
    assert str(error.value).startswith(message.format(path=path)) and "\n" not in str(error.value)


def test_text_files_class_count_and_unseen_validation_labels(tmp_path):
    _write_csv(tmp_path / "train.csv", ROWS)
    _write_csv(tmp_path / "val.csv", [("x", "bad"), ("y", "superb")])
    with pytest.raises(ConfigError, match=r"train.csv has 3 classes \(bad, good, meh\) but model.config.num_labels "
                                          r"is 2; set model.config.num_labels: 3"):
        _text_data(tmp_path, 2, train_path="train.csv").setup("fit")
    with pytest.raises(ConfigError, match=r"labels \['superb'\] of the validation file .*val.csv never occur"):
        _text_data(tmp_path, train_path="train.csv", val_path="val.csv").setup("fit")
    with pytest.raises(ConfigError, match=r"data source 'text-files' needs data\.options\.train_path"):
        _text_data(tmp_path).setup("fit")


def _corpus_data(base: Path, num_workers: int = 0, **options) -> TextCorpusData:
    spec = DataSpec(source="text-corpus", batch_size=4, num_workers=num_workers, options={"corpus": "files", **options},
                    base_dir=str(base))
    return TextCorpusData(spec, MaskedLanguageModelConfig(), seed=0)


def test_text_corpus_windows_are_the_files_bytes(tmp_path):
    text = "".join(f"Paragraph {i}: ünïcödé words, and more words.\n\n" for i in range(400)).encode()
    (tmp_path / "book.txt").write_bytes(text)
    (tmp_path / "notes.jsonl").write_text("".join(json.dumps({"text": f"note {i} ✓"}) + "\n" for i in range(50)))
    data = _corpus_data(tmp_path, paths=["book.txt", "notes.jsonl"], sequence_length=34, val_fraction=0.1)
    data.setup("fit")
    oracle = text + b"\n\n" + "\n\n".join(f"note {i} ✓" for i in range(50)).encode()
    chunks = data.train_set.chunks
    assert len(chunks.source) == len(oracle)
    for i in range(0, len(data.train_set), 37):
        index, window = data.train_set[i]
        start, end = chunks.span(i)
        assert index == i and window == oracle[start:end] and len(window) == 32
    batch = data.collate([data.train_set[0], data.train_set[1]])
    assert batch["input_ids"].shape == (2, 34)


def test_streamed_corpus_resumes_mid_epoch_on_the_same_windows(tmp_path):
    (tmp_path / "c.txt").write_bytes(os.urandom(20_000))
    data = _corpus_data(tmp_path, paths=["c.txt"], sequence_length=18)
    data.setup("fit")
    size, batch = len(data.train_set), 8
    full = list(EpochSeededSampler(size, seed=5, position=lambda: (2, 0)))
    resumed = list(EpochSeededSampler(size, seed=5, position=lambda: (2, 3 * batch)))
    assert resumed == full[3 * batch:]
    assert [data.train_set[i][1] for i in resumed[:batch]] == [data.train_set[i][1] for i in full[24:32]]
    assert torch.equal(torch.tensor(full), torch.randperm(size, generator=torch.Generator().manual_seed(
        5 * 1_000_003 + 2)))


def test_text_corpus_path_errors(tmp_path):
    with pytest.raises(ConfigError, match=rf"data.options.paths\[0\]: no file at {tmp_path}/missing.txt"):
        _corpus_data(tmp_path, paths=["missing.txt"]).setup("fit")
    (tmp_path / "table.parquet").write_bytes(b"PAR1")
    with pytest.raises(ConfigError, match=r"is not a \.txt, \.jsonl or \.csv file"):
        _corpus_data(tmp_path, paths=["table.parquet"]).setup("fit")


def test_the_cli_refuses_a_class_count_mismatch_in_one_line_before_writing(tmp_path, capsys):
    _images(tmp_path / "pictures")
    config = {"task": "image-classification", "output_dir": "run",
              "model": {"config": {"num_labels": 2, **TINY_IMAGE_MODEL}},
              "data": {"source": "image-folder", "options": {"train_root": "pictures", "image_size": 8}},
              "trainer": {"max_steps": 1, "accelerator": "cpu", "enable_progress_bar": False}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    code = main(["train", "--config", str(tmp_path / "config.yaml"), "--set", f"output_dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "has 3 classes (cat, dog, owl) but model.config.num_labels is 2" in err
    assert not (tmp_path / "run").exists()


def test_a_run_on_a_streamed_corpus_resumed_mid_epoch_ends_with_the_same_weights(tmp_path):
    """Train 6 steps straight, and 3 steps then a resumed 3 more, on a .txt read window by window: the data
    order comes back from the step count, so both end bit-identical. The learning rate is constant (no warm-up,
    min_lr_ratio 1) so that the stopped run's schedule is the uninterrupted run's."""
    from safetensors.torch import load_file

    from perceiverkit.train import load_train_config, train

    (tmp_path / "corpus.txt").write_text("".join(f"Line {i}: {' '.join(['words'] * (i % 9))} ünïcödé.\n"
                                                 for i in range(3000)), encoding="utf-8")
    config = {"task": "masked-lm", "seed": 3,
              "model": {"config": {"vocab_size": 262, "max_position_embeddings": 34, "d_model": 32,
                                   "encoder": {"num_latents": 8, "d_latents": 32, "num_self_attends_per_block": 1,
                                               "num_self_attention_heads": 2, "num_cross_attention_heads": 1,
                                               "attention_dropout": 0.0},
                                   "decoder_num_heads": 1}},
              "data": {"source": "text-corpus", "batch_size": 4,
                       "options": {"corpus": "files", "paths": ["corpus.txt"], "sequence_length": 34}},
              "optim": {"warmup_steps": 0, "min_lr_ratio": 1.0},
              "trainer": {"accelerator": "cpu", "enable_progress_bar": False, "limit_val_batches": 0,
                          "deterministic": True}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))

    def run(out: str, steps: int, *extra: str) -> dict[str, torch.Tensor]:
        train(load_train_config(None, tmp_path / "config.yaml", [f"output_dir={tmp_path / out}",
                                                                  f"trainer.max_steps={steps}", *extra]))
        return load_file(tmp_path / out / "model" / "model.safetensors")

    straight = run("straight", 6)
    halfway = run("stopped", 3)
    resumed = run("stopped", 6, "resume=auto")
    assert straight.keys() == resumed.keys()
    assert not all(torch.equal(straight[k], halfway[k]) for k in straight)  # the last 3 steps changed weights
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_loader_workers_open_their_own_files_and_give_the_same_batches(tmp_path):
    _write_csv(tmp_path / "reviews.csv", ROWS)
    (tmp_path / "c.txt").write_bytes(os.urandom(5000))
    for make in (lambda n: _text_data(tmp_path, train_path="reviews.csv", validation_size=12, num_workers=n),
                 lambda n: _corpus_data(tmp_path, paths=["c.txt"], sequence_length=18, num_workers=n)):
        batches = []
        for workers in (0, 2):
            data = make(workers)
            data.setup("fit")
            data.train_set[0]  # opens the file in this process first: the workers must not inherit a handle
            batches.append([batch["input_ids"] for batch in data.val_dataloader()])
        assert len(batches[0]) > 1 and all(torch.equal(a, b) for a, b in zip(*batches, strict=True))


def test_every_data_source_option_is_documented():
    """Each option a registered data source accepts is named in docs/training.md: in the source's own section
    (a heading naming it) or in its row of a table."""
    import re

    from perceiverkit.tasks import TASKS
    from perceiverkit.tasks.registry import get_task

    docs = (Path(__file__).parents[2] / "docs" / "training.md").read_text(encoding="utf-8")
    sections = re.split(r"\n(?=#+ )", docs)
    missing = []
    for task in TASKS:
        spec = get_task(task)
        for source in spec.data_sources:
            cls = spec.data_source_class(source)
            assert cls.__doc__, f"{cls.__name__} has no docstring"
            where = "\n".join([s for s in sections if f"`{source}`" in s.split("\n", 1)[0]] +
                              [line for line in docs.splitlines() if line.startswith(f"| `{source}` |")])
            missing += [f"{task}:{source}:{option}" for option in cls.options if f"`{option}`" not in where]
    assert missing == []


@pytest.mark.parametrize(("options", "message"), [
    ({"split_seed": "abc"}, "data.options.split_seed must be an int, got 'abc'"),  # was int()'s own words
    ({"grayscale": "maybe"}, "data.options.grayscale must be true or false, got 'maybe'"),  # was read as true
])
def test_image_folder_option_values_name_the_option(tmp_path, options, message):
    _images(tmp_path / "pictures")
    with pytest.raises(ConfigError, match=message):
        _image_data(tmp_path, train_root="pictures", image_size=8, **options).setup("fit")


@pytest.mark.parametrize(("options", "message"), [
    # was "length must be a positive integer, got -2": the window's inner length, not the option
    ({"sequence_length": 0}, r"data.options.sequence_length must be ≥ 3, got 0"),
    # was "the data does not fit the model (...); set model.config ..." from the first batch
    ({"mask_probability": 2}, r"data.options.mask_probability must be a number in \(0, 1\), got 2"),
    ({"val_fraction": 1.5}, r"data.options.val_fraction must be a number in \[0, 1\), got 1.5"),
    ({"whole_word": "yes"}, r"data.options.whole_word must be true or false, got 'yes'"),
])
def test_text_corpus_option_values_name_the_option(tmp_path, options, message):
    (tmp_path / "corpus.txt").write_text("the cat sat on the mat. " * 40)
    spec = DataSpec(source="text-corpus", batch_size=2, base_dir=str(tmp_path),
                    options={"corpus": "files", "paths": ["corpus.txt"], "sequence_length": 16, **options})
    with pytest.raises(ConfigError, match=message):
        TextCorpusData(spec, MaskedLanguageModelConfig(), seed=0).setup("fit")
