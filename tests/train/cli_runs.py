"""Running ``perceiverkit train`` in a subprocess: multi-process strategies relaunch the command line, so they
cannot run inside pytest's own process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from perceiverkit.resources import packaged_config

CONFIG = packaged_config("digits")
QUIET = ["trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1", "trainer.limit_val_batches=2"]
#: Plain SGD with momentum: Adam would turn float noise in gradients that are exactly zero in theory (key biases,
#: which softmax ignores) into full-size steps, so weights would differ by the learning rate between runs that
#: only differ in summation order. Momentum still gives the optimiser a state to checkpoint and reshard.
SGD = ["optim.optimizer=sgd", "optim.lr=0.05"]


def train_cli(tmp: Path, name: str, *overrides: str, config: Path = CONFIG) -> Path:
    """Train the digits model (or ``config``'s) for 8 steps (unless overridden) on CPU in a fresh process;
    returns the run folder."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    cmd = [sys.executable, "-m", "perceiverkit.cli", "train", "--config", str(config), "--set", *QUIET,
           "data.shuffle=false", "trainer.max_steps=8", "trainer.accelerator=cpu", "trainer.limit_val_batches=0",
           f"output_dir={tmp / name}", *overrides]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return tmp / name
