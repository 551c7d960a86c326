"""Model cards: generated metadata in the Hub's format, the shipped models' cards kept generated."""

from __future__ import annotations

import json

import pytest
import yaml
from huggingface_hub import ModelCard

import perceiverkit
from perceiverkit.checkpoints.model_card import CardFacts, TrainingRecord, main, render_model_card, shipped_card
from perceiverkit.config import ConfigError
from perceiverkit.resources import packaged_model_names

SHIPPED = packaged_model_names()


def _split(card: str) -> tuple[dict, str]:
    _, front, body = card.split("---\n", 2)
    return yaml.safe_load(front), body


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_card_is_what_the_generator_writes(name):
    path, generated = shipped_card(name)
    assert path.read_text(encoding="utf-8") == generated, (
        f"{path} is not its generated card: edit card.yaml beside it and run "
        "python -m perceiverkit.checkpoints.model_card --shipped")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_card_metadata_parses_as_the_hub_reads_it(name):
    path, _ = shipped_card(name)
    card = ModelCard(path.read_text(encoding="utf-8"))  # huggingface_hub's own parser, model-index included
    model = perceiverkit.from_pretrained(name)
    assert card.data.library_name == "perceiverkit"
    assert {"perceiver-io", "perceiverkit"} <= set(card.data.tags)
    assert card.data.pipeline_tag == perceiverkit.tasks.registry.get_task(model.task).pipeline_tag
    assert card.data.eval_results, "every shipped model reports a measured result"
    _, body = _split(path.read_text(encoding="utf-8"))
    metric_row = next(line for line in body.splitlines() if line.startswith("| metric |"))
    for result in card.data.eval_results:  # the text states each metadata value
        assert f"**{result.metric_value:g}" in metric_row
    assert f"{model.num_parameters():,} parameters" in body


def test_shipped_card_metadata_per_task():
    metadata = {name: _split(shipped_card(name)[1])[0] for name in SHIPPED}
    assert metadata["byte-mlm"]["pipeline_tag"] == "fill-mask"
    assert metadata["fashion-mnist-classifier"]["pipeline_tag"] == "image-classification"
    assert metadata["fashion-mnist-classifier"]["datasets"] == ["zalando-datasets/fashion_mnist"]
    assert "pipeline_tag" not in metadata["optical-flow-small"]  # the Hub has no optical-flow task
    assert metadata["optical-flow-small"]["model-index"][0]["results"][0]["metrics"][0]["value"] == 1.64


def test_check_mode_reports_no_stale_card(capsys):
    assert main(["--shipped", "--check"]) == 0
    assert capsys.readouterr().out == ""


def test_training_record_is_read_from_the_run_or_its_model_folder(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "config.yaml").write_text("data: {source: digits, batch_size: 32}\noptim: {lr: 0.002}\n"
                                          "trainer: {max_steps: -1, max_epochs: 4}\nseed: 7\n")
    (tmp_path / "metrics.json").write_text(json.dumps({"val/accuracy": 0.987654, "train/loss": 0.1,
                                                       "val/loss": float("nan")}))
    for where in (tmp_path, tmp_path / "model"):
        record = TrainingRecord.read(where)
        assert record.datasets() == ("digits",)
        (metric,) = record.card_metrics()  # train/ is no result, and a NaN is not reported
        assert (metric.type, metric.value, metric.split) == ("accuracy", 0.9877, "validation")
        assert record.summary() == "data source `digits` (batch 32); lr 0.002; 4 epochs; seed 7"
    with pytest.raises(ConfigError, match="no training record"):
        TrainingRecord.read(tmp_path / "model" / "missing")


def test_card_facts_refuse_generated_rows_and_unknown_fields():
    with pytest.raises(ConfigError, match="generated"):
        CardFacts.from_dict({"rows": {"size": "1 MB"}})
    with pytest.raises(ConfigError, match="unknown field"):
        CardFacts.from_dict({"titel": "typo"})


def test_card_without_record_or_facts_claims_no_results():
    model = perceiverkit.from_pretrained("byte-mlm")
    metadata, body = _split(render_model_card(model, "my-mlm", source="me/my-mlm"))
    assert metadata == {"library_name": "perceiverkit", "pipeline_tag": "fill-mask",
                        "tags": ["perceiver-io", "perceiverkit", "masked-lm"]}
    assert "| metric |" not in body and 'from_pretrained("me/my-mlm")' in body
