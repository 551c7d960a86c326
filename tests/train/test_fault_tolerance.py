"""Killed training: SIGTERM saves and exits cleanly; repeated SIGKILLs with resumes end bit-identical to an
uninterrupted run; checkpoints are written atomically."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from perceiverkit.resources import packaged_config

CONFIG = packaged_config("digits")
BASE = ["trainer.enable_progress_bar=false", "trainer.limit_val_batches=0", "trainer.deterministic=true",
        "trainer.checkpoint_every_n_steps=7", "trainer.accelerator=cpu", "trainer.log_every_n_steps=5"]


def _command(out: Path, steps: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "perceiverkit.cli", "train", "--config", str(CONFIG), "--set", *BASE,
            f"trainer.max_steps={steps}", f"output_dir={out}", *extra]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1")


def _wait_for_checkpoint(proc: subprocess.Popen, last: Path, after: float, timeout: float = 120) -> bool:
    """Wait until ``last`` is (re)written after ``after``; False if the process ended first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        if last.is_file() and last.stat().st_mtime > after:
            return True
        time.sleep(0.05)
    raise TimeoutError("training made no checkpoint in time")


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(_command(out, 100_000), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())
    assert _wait_for_checkpoint(proc, out / "checkpoints" / "last.ckpt", 0)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-3000:]
    assert "stopped by SIGTERM" in stdout
    state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert state["global_step"] > 7 and "random_state" in state
    assert not (out / "model").exists()  # no final model from an interrupted run


@pytest.mark.slow
def test_sigkill_three_times_then_resume_is_bit_identical(tmp_path):
    steps = 150
    reference = subprocess.run(_command(tmp_path / "reference", steps), capture_output=True, text=True, env=_env(),
                               timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]

    out = tmp_path / "killed"
    last = out / "checkpoints" / "last.ckpt"
    rng = random.Random(1234)
    kills = 0
    for _ in range(12):
        proc = subprocess.Popen(_command(out, steps, "resume=auto"), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=_env())
        if kills < 3:
            started = last.stat().st_mtime if last.is_file() else 0.0
            if _wait_for_checkpoint(proc, last, started):
                time.sleep(rng.uniform(0.0, 0.3))  # somewhere between checkpoints, or in the middle of one
                proc.kill()
                proc.wait()
                kills += 1
                continue
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
        break
    assert kills == 3
    expected = load_file(tmp_path / "reference" / "model" / "model.safetensors")
    got = load_file(out / "model" / "model.safetensors")
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    from perceiverkit.train.checkpoint_io import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1}, target)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # a kill in the middle of writing the new checkpoint

    monkeypatch.setattr(torch, "save", crash)
    try:
        io.save_checkpoint({"step": 2}, target)
    except KeyboardInterrupt:
        pass
    monkeypatch.undo()
    assert torch.load(target, weights_only=False) == {"step": 1}  # the previous checkpoint is intact
