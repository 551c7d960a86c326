"""Training with ``model.compile``: the compiled training step computes what the eager one does."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import lightning as L
import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from perceiverkit.config import ConfigError
from perceiverkit.resources import packaged_config
from perceiverkit.train import build_model, load_train_config, train
from perceiverkit.train.datamodules import DigitsData
from perceiverkit.train.modules import ClassificationModule

CONFIG = packaged_config("digits")
QUIET = ["trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1", "trainer.limit_val_batches=1",
         "trainer.deterministic=true"]


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_compiled_image_classification_step_matches_eager():
    """One training step of the digits classifier, compiled into one graph (``fullgraph=True``) with the
    tracing-only ``eager`` backend: the same loss, accuracy and gradient for every parameter as uncompiled."""
    config = load_train_config(None, CONFIG, QUIET)
    torch.manual_seed(0)
    model = build_model(config).train()
    reference = copy.deepcopy(model)
    model.compile(backend="eager", fullgraph=True)
    data = DigitsData(config.data, model.config, config.seed)
    data.setup("fit")
    batch = next(iter(data.val_dataloader()))
    graphs_before = counters["stats"]["unique_graphs"]
    results = []
    for m in (model, reference):
        module = ClassificationModule(m, config.optim, total_steps=10)
        loss, metrics = module.compute(batch, "train")
        loss.backward()
        results.append((loss, metrics, {n: p.grad for n, p in m.named_parameters()}))
    assert counters["stats"]["unique_graphs"] == graphs_before + 1  # the compiled model ran as one graph
    (loss, metrics, grads), (ref_loss, ref_metrics, ref_grads) = results
    torch.testing.assert_close(loss, ref_loss, atol=1e-6, rtol=0)
    torch.testing.assert_close(metrics["accuracy"], ref_metrics["accuracy"], atol=0, rtol=0)
    assert grads.keys() == ref_grads.keys()
    for name in grads:
        assert grads[name] is not None, name
        torch.testing.assert_close(grads[name], ref_grads[name], atol=1e-6, rtol=0, msg=lambda m, n=name: f"{n}: {m}")


def _losses(run: Path) -> dict[int, float]:
    with open(run / "csv" / "metrics.csv") as f:
        return {int(r["step"]): float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")}


class RecordCompiled(L.Callback):
    """Records whether the trained model is compiled (``nn.Module.compile`` sets ``_compiled_call_impl``)."""

    def __init__(self) -> None:
        self.compiled: bool | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.compiled = pl_module.model._compiled_call_impl is not None


@pytest.mark.slow
def test_compile_switch_trains_the_same_loss_curve(tmp_path):
    """``model.compile=true`` with the ``eager`` backend and ``fullgraph``: a short deterministic run logs the
    same training losses as the uncompiled run, and the checkpointed weights keep their uncompiled names."""
    runs = {}
    for name, extra in [("eager", []), ("compiled", ["model.compile=true", "model.compile_backend=eager",
                                                      "model.compile_fullgraph=true"])]:
        config = load_train_config(None, CONFIG, [*QUIET, "trainer.max_steps=4", f"output_dir={tmp_path / name}",
                                                  *extra])
        recorder = RecordCompiled()
        result = train(config, callbacks=[recorder])
        runs[name] = (result, recorder.compiled)
    assert runs["eager"][1] is False and runs["compiled"][1] is True
    eager, compiled = _losses(tmp_path / "eager"), _losses(tmp_path / "compiled")
    assert sorted(eager) == sorted(compiled) and len(eager) == 4
    for step in eager:
        assert compiled[step] == pytest.approx(eager[step], rel=0, abs=1e-6), step
    from safetensors.torch import load_file

    a = load_file(runs["eager"][0].model_dir / "model.safetensors")
    b = load_file(runs["compiled"][0].model_dir / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-5, rtol=0, msg=lambda m, k=key: f"{k}: {m}")


def test_unknown_compile_backend_is_a_config_error():
    with pytest.raises(ConfigError, match="model.compile_backend must be one of .*got 'inductr'"):
        load_train_config(None, CONFIG, ["model.compile=true", "model.compile_backend=inductr"])
    # Without compile the backend is not used, so it is not checked either.
    load_train_config(None, CONFIG, ["model.compile_backend=inductr"])


class RecordBudget(L.Callback):
    def on_train_batch_start(self, *args) -> None:
        import torch._functorch.config as functorch_config

        self.budget = functorch_config.activation_memory_budget


@pytest.mark.slow
def test_memory_budget_is_in_force_while_the_model_compiles_and_trains(tmp_path):
    recorder = RecordBudget()
    config = load_train_config(None, CONFIG, [*QUIET, "trainer.max_steps=1", f"output_dir={tmp_path}",
                                              "model.compile=true", "model.compile_backend=eager",
                                              "model.compile_memory_budget=0.25"])
    train(config, callbacks=[recorder])
    assert recorder.budget == 0.25


@pytest.mark.parametrize("overrides, message", [
    (["model.compile_memory_budget=0.5"], "needs model.compile=true"),
    (["model.compile=true", "model.compile_memory_budget=2"], r"must be a number in \[0, 1\]"),
])
def test_bad_memory_budget_is_a_config_error(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config(None, CONFIG, overrides)
