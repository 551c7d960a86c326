"""End-to-end training in one process: it learns, and resuming continues the same curve (multi-process runs:
test_distributed.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import pytest
import torch
from safetensors.torch import load_file

from perceiverkit.train import load_train_config, train

from .cli_runs import CONFIG, QUIET


def _losses(run: Path) -> dict[int, float]:
    with open(run / "csv" / "metrics.csv") as f:
        return {int(r["step"]): float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")}


class StopAt(L.Callback):
    """Interrupt training after ``step`` optimiser steps (the schedule still plans for the full run)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def _run(tmp: Path, name: str, *overrides: str, callbacks=None):
    config = load_train_config(None, CONFIG, [*QUIET, f"output_dir={tmp / name}", *overrides])
    return train(config, callbacks=callbacks)


@pytest.mark.slow
def test_digits_learns(tmp_path):
    result = _run(tmp_path, "learn", "trainer.max_steps=150")
    assert result.metrics["val/accuracy"] > 0.6  # chance is 0.1
    assert (result.model_dir / "model.safetensors").is_file() and (tmp_path / "learn" / "tensorboard").is_dir()


@pytest.mark.slow
def test_resumed_run_continues_the_same_loss_curve(tmp_path):
    # 1347 training digits / batch 64 = 21 steps per epoch: interrupt mid-epoch at step 15, resume to 42.
    full = _run(tmp_path, "full", "trainer.max_steps=42", "trainer.deterministic=true")
    _run(tmp_path, "first", "trainer.max_steps=42", "trainer.deterministic=true", callbacks=[StopAt(15)])
    checkpoint = tmp_path / "first" / "checkpoints" / "last.ckpt"
    assert torch.load(checkpoint, weights_only=False)["global_step"] == 15
    resumed = _run(tmp_path, "first", "trainer.max_steps=42", "trainer.deterministic=true", f"resume={checkpoint}")
    a, b = _losses(tmp_path / "full"), _losses(tmp_path / "first")
    resumed_steps = sorted(k for k in b if k > 15)  # rows logged after the restart
    assert resumed_steps == sorted(k for k in a if k > 15)
    for step in resumed_steps:
        assert b[step] == pytest.approx(a[step], rel=1e-5, abs=1e-6), step
    torch.testing.assert_close(load_file(resumed.model_dir / "model.safetensors"),
                               load_file(full.model_dir / "model.safetensors"))


@pytest.mark.slow
def test_bf16_mixed_precision_with_activation_checkpointing_and_bf16_latents(tmp_path):
    result = _run(tmp_path, "bf16", "trainer.max_steps=40", "trainer.precision=bf16-mixed",
                  "model.activation_checkpointing=true", "model.half_precision_latents=true",
                  "optim.optimizer=lamb", "optim.lr=0.01")
    assert torch.isfinite(torch.tensor(result.metrics["train/loss"]))
    assert result.metrics["val/accuracy"] > 0.2  # learning under autocast (chance: 0.1)


def test_bf16_latents_need_a_mixed_precision_run():
    from perceiverkit.config import ConfigError

    with pytest.raises(ConfigError, match="half_precision_latents needs a mixed trainer.precision"):
        load_train_config(None, CONFIG, ["model.half_precision_latents=true"])
    config = load_train_config(None, CONFIG, ["model.half_precision_latents=true", "trainer.precision=bf16-mixed"])
    assert config.model.half_precision_latents


def test_the_run_finds_task_preset_and_data_source_in_the_registry():
    from perceiverkit.config import ConfigError
    from perceiverkit.tasks import PointCloudClassifier
    from perceiverkit.train.run import build_datamodule, build_model

    config = load_train_config("point-cloud", None, ["data.source=digits"])  # an alias of the task
    model = build_model(config)
    assert isinstance(model, PointCloudClassifier)
    with pytest.raises(ConfigError, match=r"unknown data source 'digits' for task 'point-cloud-classification'; "
                                          r"expected one of \['point-clouds'\]"):
        build_datamodule(config, model)
    with pytest.raises(ConfigError, match="unknown task 'juggling'; expected one of"):
        build_model(load_train_config("juggling", None, ["data.source=digits"]))
    with pytest.raises(ConfigError, match="preset 'vision-perceiver-conv' is not a masked-lm preset"):
        build_model(load_train_config("mlm", None, ["data.source=text-corpus", "model.preset=vision-perceiver-conv"]))


def test_model_switches_reach_the_causal_lm_or_are_refused_in_one_line():
    """activation_checkpointing and half_precision_latents go through the task model, so a model without a
    Perceiver IO encoder (Perceiver AR) takes the first and refuses the second with a ConfigError."""
    from perceiverkit.config import ConfigError
    from perceiverkit.train.run import build_model

    base = ["data.source=packed-text", "model.preset=perceiver-ar-tiny"]
    model = build_model(load_train_config("causal-lm", None, [*base, "model.activation_checkpointing=true"]))
    assert model.gradient_checkpointing
    mlm = build_model(load_train_config("mlm", None, ["data.source=text-corpus", "model.activation_checkpointing=true",
                                                      "trainer.precision=bf16-mixed",
                                                      "model.half_precision_latents=true"]))
    assert mlm.perceiver.encoder.gradient_checkpointing and mlm.perceiver.encoder.half_precision_latents
    with pytest.raises(ConfigError, match="causal-lm model has no such stream"):
        build_model(load_train_config("causal-lm", None, [*base, "trainer.precision=bf16-mixed",
                                                          "model.half_precision_latents=true"]))
