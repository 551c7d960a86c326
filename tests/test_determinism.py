"""Determinism on CPU: the same seed gives the same weights, the same outputs and the same training curve."""

from __future__ import annotations

import csv

import pytest
import torch

import perceiverkit
from perceiverkit.resources import packaged_config
from perceiverkit.train import load_train_config, train

CONFIG = packaged_config("digits")


def test_same_seed_same_model_and_outputs():
    outputs = []
    for _ in range(2):
        torch.manual_seed(7)
        model = perceiverkit.create_model("language-perceiver", max_position_embeddings=32, encoder=perceiverkit.EncoderConfig(
            num_latents=8, d_latents=32, num_self_attends_per_block=2, num_self_attention_heads=4)).eval()
        with torch.no_grad():
            outputs.append(model(torch.arange(6, 26).reshape(2, 10)).logits)
    assert torch.equal(outputs[0], outputs[1])


@pytest.mark.slow
def test_same_seed_same_training_curve(tmp_path):
    curves = []
    for name in ("a", "b"):
        config = load_train_config(None, CONFIG, ["trainer.max_steps=25", "trainer.log_every_n_steps=1",
                                                  "trainer.enable_progress_bar=false", "trainer.limit_val_batches=0",
                                                  "trainer.deterministic=true", "seed=3", f"output_dir={tmp_path / name}"])
        train(config)
        with open(tmp_path / name / "csv" / "metrics.csv") as f:
            curves.append([r["train/loss"] for r in csv.DictReader(f) if r.get("train/loss")])
    assert len(curves[0]) == 25 and curves[0] == curves[1]
