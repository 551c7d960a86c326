"""``perceiverkit predict``: every input a path names, through the model's pipeline, one JSON line each.

Oracles are computed by hand, beside the command: images resized with Pillow and scaled to [0, 1] as the model's
saved preprocessing says, texts tokenised by the model's tokenizer, and both pushed through the model directly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from perceiverkit import create_model, from_pretrained
from perceiverkit.cli import main
from perceiverkit.config import EncoderConfig, config_from_dict, config_to_dict
from perceiverkit.image_processing import ImageProcessor
from perceiverkit.pipelines import pipeline
from perceiverkit.tasks.text import SequenceClassifier, SequenceClassifierConfig
from perceiverkit.tasks.vision import ImageClassifier, ImageClassifierConfig

ENCODER = EncoderConfig(num_latents=4, d_latents=16, num_self_attends_per_block=1, num_self_attention_heads=1,
                        num_cross_attention_heads=1, attention_dropout=0.0)
SIZE = 12


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def image_model(tmp_path_factory) -> Path:
    config = config_from_dict(ImageClassifierConfig, {
        "num_labels": 3, "labels": ["circle", "square", "stripes"], "encoder": config_to_dict(ENCODER),
        "image": {"prep_type": "pixels", "in_channels": 3, "spatial_downsample": 1,
                  "position": {"kind": "fourier", "num_bands": 4, "max_resolution": [SIZE, SIZE]}}})
    torch.manual_seed(0)
    model = ImageClassifier(config)
    model.image_processor = ImageProcessor.plain((SIZE, SIZE), num_channels=3)
    return model.save_pretrained(tmp_path_factory.mktemp("models") / "shapes")


@pytest.fixture
def pictures(tmp_path) -> Path:
    """Seven pictures in a nested folder (other sizes than the model's), with a text file that is skipped."""
    rng = np.random.default_rng(0)
    for i in range(7):
        folder = tmp_path / "pictures" / ("b" if i % 2 else "a")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20 + i, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (tmp_path / "pictures" / "notes.txt").write_text("not a picture")
    return tmp_path / "pictures"


def test_image_folder_recursively_sorted_with_hand_computed_scores(image_model, pictures, tmp_path, capsys):
    out = tmp_path / "predictions.jsonl"
    assert main(["predict", str(pictures), "--model", str(image_model), "-o", str(out), "--top-k", "3",
                 "--batch-size", "2", "--device", "cpu"]) == 0
    assert "predicting" in capsys.readouterr().err  # seven inputs: a progress bar on stderr
    lines = _lines(out)
    files = sorted(str(p) for p in pictures.rglob("*.png"))
    assert [line["input"] for line in lines] == files
    model = from_pretrained(image_model)
    for line, file in zip(lines, files, strict=True):
        resized = Image.open(file).convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
        pixels = torch.tensor(np.asarray(resized), dtype=torch.float32).permute(2, 0, 1)[None] / 255
        with torch.no_grad():
            scores = model(pixel_values=pixels).logits.softmax(-1)[0]
        expected = dict(zip(model.label_names, scores.tolist(), strict=True))
        assert {r["label"]: r["score"] for r in line["result"]} == pytest.approx(expected, abs=1e-5)
        assert [r["label"] for r in line["result"]] == sorted(expected, key=expected.__getitem__, reverse=True)


def test_unreadable_image_is_one_line_and_nothing_is_written(image_model, pictures, tmp_path, capsys):
    (pictures / "a" / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "predictions.jsonl"
    out.write_text("earlier\n")
    assert main(["predict", str(pictures), "--model", str(image_model), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{pictures / 'a' / 'broken.png'} is not an image Pillow can read" in err
    assert out.read_text() == "earlier\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "pictures", "predictions.jsonl"]


@pytest.fixture(scope="module")
def text_model(tmp_path_factory) -> Path:
    config = SequenceClassifierConfig(max_position_embeddings=64, d_model=16, encoder=ENCODER, num_labels=2,
                                      labels=("negative", "positive"))
    torch.manual_seed(0)
    return SequenceClassifier(config).save_pretrained(tmp_path_factory.mktemp("models") / "sentiment")


def _text_scores(model: SequenceClassifier, text: str) -> dict[str, float]:
    batch = model.make_tokenizer()([text], padding=True, truncation=True)
    with torch.no_grad():
        scores = model(batch["input_ids"], batch["attention_mask"]).logits.softmax(-1)[0]
    return dict(zip(model.config.labels, scores.tolist(), strict=True))


def test_csv_jsonl_and_text_files(text_model, tmp_path):
    (tmp_path / "reviews.csv").write_text("id,review\n1,a fine film\n2,\"dull, long\"\n")
    (tmp_path / "more.jsonl").write_text('{"review": "loved it"}\n\n{"review": "never again"}\n')
    (tmp_path / "note.txt").write_text("one paragraph only\n")
    out = tmp_path / "out" / "p.jsonl"
    assert main(["predict", str(tmp_path / "reviews.csv"), str(tmp_path / "more.jsonl"), str(tmp_path / "note.txt"),
                 "--column", "review", "--model", str(text_model), "-o", str(out), "--top-k", "2"]) == 0
    lines = _lines(out)
    assert [(line["input"], line["text"]) for line in lines] == [
        (f"{tmp_path / 'reviews.csv'}#1", "a fine film"), (f"{tmp_path / 'reviews.csv'}#2", "dull, long"),
        (f"{tmp_path / 'more.jsonl'}#1", "loved it"), (f"{tmp_path / 'more.jsonl'}#2", "never again"),
        (str(tmp_path / "note.txt"), "one paragraph only")]
    model = from_pretrained(text_model)
    for line in lines:
        assert {r["label"]: r["score"] for r in line["result"]} == pytest.approx(
            _text_scores(model, line["text"]), abs=1e-5)


@pytest.mark.parametrize("content,message", [
    ("", "empty CSV file"),
    ("a fine film,positive\n", "no 'text' column (columns: ['a fine film', 'positive'])"),
    ("review\nfine\n", "no 'text' column"),
])
def test_bad_csv_is_one_line(text_model, tmp_path, capsys, content, message):
    (tmp_path / "in.csv").write_text(content)
    assert main(["predict", str(tmp_path / "in.csv"), "--model", str(text_model), "-o",
                 str(tmp_path / "p.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "--column" in err, err
    assert not (tmp_path / "p.jsonl").exists()


def test_fill_mask_and_a_failure_midway_leaves_the_old_output(tmp_path, capsys):
    texts = tmp_path / "texts.jsonl"
    texts.write_text('{"text": "The cat sat on the [MASK]at."}\n{"text": "two [MASK][MASK] masks"}\n')
    out = tmp_path / "p.jsonl"
    assert main(["predict", str(texts), "--model", "byte-mlm", "-o", str(out), "--top-k", "2"]) == 0
    expected = pipeline("fill-mask", "byte-mlm", top_k=2)(["The cat sat on the [MASK]at.", "two [MASK][MASK] masks"])
    assert [line["result"] for line in _lines(out)] == json.loads(json.dumps(expected))
    assert len(_lines(out)[1]["result"]) == 2  # one candidate list per mask
    before = out.read_text()
    texts.write_text('{"text": "a [MASK]"}\n{"text": "no mask here"}\n')
    assert main(["predict", str(texts), "--model", "byte-mlm", "-o", str(out), "--batch-size", "1"]) == 2
    assert "must contain at least one [MASK]" in capsys.readouterr().err
    assert out.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl", "texts.jsonl"]


def test_text_generation(tmp_path):
    torch.manual_seed(0)
    model = create_model("perceiver-ar-tiny").save_pretrained(tmp_path / "ar")
    (tmp_path / "prompts.txt").write_text("Once upon\n\nIn a hole")
    assert main(["predict", str(tmp_path / "prompts.txt"), "--model", str(model), "-o", str(tmp_path / "p.jsonl"),
                 "--max-new-tokens", "5"]) == 0
    expected = pipeline("text-generation", str(model), max_new_tokens=5)(["Once upon", "In a hole"])
    assert [line["result"] for line in _lines(tmp_path / "p.jsonl")] == [r[0] for r in expected]


@pytest.mark.parametrize("model,message", [
    ("optical-flow-small", "holds a model for task 'optical-flow'; predict runs image-classification, "
                           "text-classification, fill-mask, text-generation models"),
    ("perceiver-ar-tiny", "names a preset"),
])
def test_other_tasks_and_presets_are_one_line(tmp_path, capsys, model, message):
    (tmp_path / "x.txt").write_text("x")
    assert main(["predict", str(tmp_path / "x.txt"), "--model", model, "-o", str(tmp_path / "p.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_missing_input_and_empty_folder(text_model, tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nope.csv"), "--model", str(text_model)]) == 2
    assert "no file or folder at" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(tmp_path / "empty"), "--model", str(text_model)]) == 2
    assert "no inputs found" in capsys.readouterr().err
