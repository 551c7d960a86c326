"""The model card of a finished run: written from the run's own files (config.yaml, metrics.json, csv/), read
back as YAML metadata and Markdown, and checked against those files, not against the writer's output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from perceiverkit import from_pretrained
from perceiverkit.config import ConfigError
from perceiverkit.train import load_train_config, train
from perceiverkit.train.run_card import write_run_card
from perceiverkit.viz.curves import COLOURS

from .cli_runs import CONFIG, QUIET


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "digits-card"
    train(load_train_config(None, CONFIG, [*QUIET, "trainer.max_steps=12", "trainer.val_check_interval=6",
                                           "trainer.accelerator=cpu", "optim.lr=0.002", f"output_dir={out}"]))
    return out


def _front_matter(card: str) -> tuple[dict, str]:
    _, front, body = card.split("---\n", 2)
    return yaml.safe_load(front), body


def test_fit_writes_the_card_itself(finished_run):
    card = finished_run / "model" / "README.md"
    assert card.is_file() and (finished_run / "model" / "metrics.png").is_file()
    assert str(finished_run / "config.yaml") in card.read_text(encoding="utf-8")


def test_card_states_data_recipe_command_metrics_and_curves(finished_run):
    path = write_run_card(finished_run)
    assert path == finished_run / "model" / "README.md"
    metadata, body = _front_matter(path.read_text(encoding="utf-8"))
    config = yaml.safe_load((finished_run / "config.yaml").read_text())
    metrics = json.loads((finished_run / "metrics.json").read_text())

    assert metadata["library_name"] == "perceiverkit" and metadata["pipeline_tag"] == "image-classification"
    assert metadata["datasets"] == ["digits"]
    results = {m["name"]: m["value"] for r in metadata["model-index"][0]["results"] for m in r["metrics"]}
    assert results == {"accuracy": float(f"{metrics['val/accuracy']:.4g}"), "loss": float(f"{metrics['val/loss']:.4g}")}

    rows = dict(line.strip("|").split("|", 1) for line in body.splitlines() if line.startswith("| "))
    rows = {key.strip(): value.strip() for key, value in rows.items()}
    assert rows["data"] == f"data source `digits`, batch size {config['data']['batch_size']}"
    assert f"lr {config['optim']['lr']}" in rows["recipe"] and "max_steps 12" in rows["recipe"]
    assert rows["command"] == f"`perceiverkit fit --config {finished_run / 'config.yaml'}`"
    assert "training" not in rows  # the recipe and data rows say it once
    for name, value in metrics.items():
        assert f"| `{name}` | {value:.6g} |" in body

    # The curves: PNGs beside the card, linked from it, drawn from the CSV log's metrics.
    with open(finished_run / "csv" / "metrics.csv") as f:
        logged = set(next(csv.reader(f)))
    assert {"train/loss", "val/loss", "val/accuracy"} <= logged
    for name in ("loss", "metrics"):
        assert f"![{name}]({name}.png)" in body
        with Image.open(finished_run / "model" / f"{name}.png") as image:
            pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
        assert image.size == (640, 400) and (pixels == COLOURS[0]).all(axis=1).any()  # a line, not a blank frame
    # The card travels with the model and loads with it.
    assert from_pretrained(finished_run).num_parameters() > 0


def test_card_names_data_options(tmp_path, finished_run):
    run = tmp_path / "copy"
    run.mkdir()
    for name in ("model", "csv"):
        (run / name).symlink_to(finished_run / name)
    config = yaml.safe_load((finished_run / "config.yaml").read_text())
    config["data"]["options"] = {"validation_size": 0.25, "split_seed": 3}
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (run / "metrics.json").write_text("{}")
    card = write_run_card(run).read_text(encoding="utf-8")
    assert "| data | data source `digits` with options validation_size 0.25, split_seed 3, batch size" in card


def test_unfinished_run_is_one_line(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(ConfigError, match="holds no finished model"):
        write_run_card(tmp_path)
