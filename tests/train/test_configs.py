"""Every shipped training config runs: two optimiser steps and one validation on its real data source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perceiverkit.resources import packaged_config, packaged_config_names
from perceiverkit.train import load_train_config, train

CONFIGS = [packaged_config(name) for name in packaged_config_names()]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_trains_two_steps(tmp_path, path):
    overrides = [f"output_dir={tmp_path / 'run'}", "trainer.max_steps=2", "trainer.max_epochs=-1",
                 "trainer.val_check_interval=2", "trainer.check_val_every_n_epoch=null", "trainer.limit_val_batches=1",
                 "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1", "data.batch_size=2"]
    config = load_train_config(None, path, overrides)
    if config.model.init_from and not Path(config.model.init_from).exists():
        config.model.init_from = None  # a stage-2 config whose stage-1 run is not here: train from scratch
    result = train(config)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert any(name.startswith("val/") for name in metrics), metrics
    assert (Path(result.model_dir) / "perceiverkit.json").is_file()
    if config.task == "optical-flow":
        # the real Middlebury pair is scored at every validation
        assert metrics["val/middlebury_zero_epe"] > 0 and metrics["val/middlebury_epe"] > 0
