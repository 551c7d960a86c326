"""Multi-process training on CPU (gloo): 2-process DDP and 2-process FSDP end with the weights of 1 process over
the same global batches, and an FSDP run resumes exactly, in FSDP or in a single process."""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
from safetensors.torch import load_file

from perceiverkit.train import build_model, load_train_config

from .cli_runs import CONFIG, SGD, train_cli

pytestmark = pytest.mark.slow  # each test launches multi-process training runs

STEPS = ["trainer.max_steps=12"]  # warm-up lasts 20 steps: a run stopped early has the same learning rates
TWO_FSDP = ["data.batch_size=16", "trainer.devices=2", "trainer.strategy=fsdp", *SGD]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model" / "model.safetensors")


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> dict[str, torch.Tensor]:
    """12 SGD steps of batch 32 in one process."""
    return _weights(train_cli(tmp_path_factory.mktemp("single"), "run", "data.batch_size=32", *STEPS, *SGD))


def _assert_same_training(ours: dict[str, torch.Tensor], single: dict[str, torch.Tensor]) -> None:
    torch.testing.assert_close(ours, single, rtol=1e-4, atol=1e-5)
    L.seed_everything(0, verbose=False)  # the runs' seed: the same initial weights
    initial = build_model(load_train_config(None, CONFIG)).state_dict()
    moved = max(float((single[k] - initial[k]).abs().max()) for k in single)
    assert moved > 100 * float(max((ours[k] - single[k]).abs().max() for k in single))


def test_two_process_ddp_matches_one_process(tmp_path, single):
    run = train_cli(tmp_path, "ddp", "data.batch_size=16", "trainer.devices=2", "trainer.strategy=ddp", *STEPS, *SGD)
    _assert_same_training(_weights(run), single)


def test_two_process_fsdp_matches_one_process_and_resumes_exactly(tmp_path, single):
    uninterrupted = train_cli(tmp_path, "fsdp", *TWO_FSDP, *STEPS)
    _assert_same_training(_weights(uninterrupted), single)

    # Stop after 6 steps; the checkpoint holds full tensors gathered from both shards, not one process's slice.
    first = train_cli(tmp_path, "first", *TWO_FSDP, "trainer.max_steps=6")
    checkpoint = torch.load(first / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 6
    L.seed_everything(0, verbose=False)
    shapes = {k: v.shape for k, v in build_model(load_train_config(None, CONFIG)).state_dict().items()}
    assert {k.removeprefix("model."): v.shape for k, v in checkpoint["state_dict"].items()} == shapes
    momentum = [s["momentum_buffer"] for s in checkpoint["optimizer_states"][0]["state"].values()]
    assert sum(m.numel() for m in momentum) == sum(v.numel() for v in shapes.values())
    one_process = tmp_path / "one-process"
    shutil.copytree(first / "checkpoints", one_process / "checkpoints")

    # Resumed under FSDP: bit for bit the uninterrupted run.
    train_cli(tmp_path, "first", *TWO_FSDP, *STEPS, "resume=auto")
    torch.testing.assert_close(_weights(first), _weights(uninterrupted), rtol=0, atol=0)
    # Resumed in a single process (the optimiser state is resharded onto one): the same training.
    train_cli(tmp_path, "one-process", "data.batch_size=32", *STEPS, *SGD, "resume=auto")
    _assert_same_training(_weights(one_process), single)


def test_two_process_fsdp_in_bf16_trains_like_one_float32_process(tmp_path, single):
    """Under bf16-mixed, FSDP gathers bf16 weights (half the traffic) but keeps float32 slices: the run follows
    the float32 one up to bf16 rounding, and the saved weights are float32."""
    run = train_cli(tmp_path, "fsdp-bf16", *TWO_FSDP, *STEPS, "trainer.precision=bf16-mixed")
    weights = _weights(run)
    assert {t.dtype for t in weights.values()} == {torch.float32}
    L.seed_everything(0, verbose=False)
    initial = build_model(load_train_config(None, CONFIG)).state_dict()
    moved = max(float((single[k] - initial[k]).abs().max()) for k in single)
    apart = max(float((weights[k] - single[k]).abs().max()) for k in single)
    assert apart < moved / 10, (apart, moved)
