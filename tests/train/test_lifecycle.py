"""The training life cycle on real data (scikit-learn's digits): typed configs checked before anything loads or is
written, fit with best-k checkpoints, early stopping, loggers and callbacks by class path, validate/test on a run's
checkpoints, and the run folder's safety (a finished run is not replaced, a failed start leaves nothing)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from perceiverkit.cli import COMMANDS, build_parser, main
from perceiverkit.config import ConfigError
from perceiverkit.resources import packaged_config
from perceiverkit.train import load_train_config

CONFIG = packaged_config("digits")
QUIET = ["trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1"]


# --- typed configs ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("override", "message"), [
    ("trainer.max_steps=abc", "trainer.max_steps must be an int, got 'abc'"),
    ("data.batch_size=big", "data.batch_size must be an int, got 'big'"),
    ("trainer.deterministic=maybe", "trainer.deterministic must be true or false, got 'maybe'"),
    ("optim.lr=-0.1", "optim.lr must be > 0, got -0.1"),
    ("optim.lr=0", "optim.lr must be > 0, got 0.0"),
    ("optim.optimizer=adam", "optim.optimizer must be one of ['adamw', 'lamb', 'sgd'], got 'adam'"),
    ("optim.betas=[0.9]", "optim.betas must be a list of 2 numbers, got [0.9]"),
    ("trainer.precision=bf17", "trainer.precision must be one of"),
    ("trainer.devices=[a]", "trainer.devices[0] must be an int, got 'a'"),  # the list option's own message
    ("trainer.devices={a: 1}", "trainer.devices must be an int or a string or a list of ints, got {'a': 1}"),
    ("trainer.max_stepz=3", "unknown field 'trainer.max_stepz'; did you mean 'max_steps'?"),
    ("data.batch_size=0", "data.batch_size must be > 0, got 0"),
    ("trainer.early_stopping={patience: 0}", "trainer.early_stopping.patience must be ≥ 1, got 0"),
    ("trainer.monitor=train/loss", "trainer.monitor must name a validation metric"),
    ("loggers=[wandb]", "loggers[0]: unknown logger 'wandb'; expected one of ['csv', 'tensorboard']"),
    ("loggers=[{class_path: x}]", "loggers[0].class_path must look like package.module.Class, got 'x'"),
    ("callbacks=[{class_path: a.B, init: 3}]", "unknown field 'callbacks[0].init'; did you mean 'init_args'?"),
    ("resume=/no/such.ckpt", "resume: no checkpoint at /no/such.ckpt"),
])
def test_a_wrong_value_is_one_line_naming_the_field_the_type_and_the_value(override, message):
    with pytest.raises(ConfigError) as error:
        load_train_config(None, CONFIG, [override])
    assert message in str(error.value) and "\n" not in str(error.value)


def test_values_are_converted_where_the_type_says_so():
    config = load_train_config(None, CONFIG, ["optim.lr=1", "optim.betas=[0.8, 0.9]", "trainer.max_steps=1e3",
                                              "trainer.early_stopping={patience: 2}"])
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert config.optim.betas == (0.8, 0.9) and config.trainer.max_steps == 1000
    assert config.trainer.early_stopping is not None and config.trainer.early_stopping.patience == 2


def _fresh_interpreter(argv: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    code = (f"import sys\nfrom perceiverkit.cli import main\nstatus = main({argv!r})\n"
            "print('LOADED', sorted(m for m in ('torch', 'lightning') if m in sys.modules), file=sys.stderr)\n"
            "sys.exit(status)\n")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return done, time.perf_counter() - start


def test_a_config_error_answers_before_torch_loads_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    done, seconds = _fresh_interpreter(["fit", "--config", "digits", "--set", "trainer.max_steps=abc",
                                        f"output_dir={out}"])
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert lines == ["perceiverkit fit: error: trainer.max_steps must be an int, got 'abc'", "LOADED []"]
    assert seconds < 2, f"the config error took {seconds:.2f} s"
    assert not out.exists()


def test_a_finished_run_in_output_dir_is_refused_before_torch_loads(tmp_path):
    """The refusal of a finished run is a config error like the others: one line, at once, nothing touched (it
    used to come after torch, Lightning and the data had loaded: ~9 s)."""
    out = tmp_path / "run"
    (out / "model").mkdir(parents=True)
    (out / "model" / "model.safetensors").write_bytes(b"old weights")
    done, seconds = _fresh_interpreter(["fit", "--config", "digits", "--set", f"output_dir={out}"])
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 2 and "already holds a finished run (model/)" in lines[0] and "--overwrite" in lines[0]
    assert lines[1] == "LOADED []"
    assert seconds < 2, f"the refusal took {seconds:.2f} s"
    assert sorted(p.name for p in out.iterdir()) == ["model"]
    assert (out / "model" / "model.safetensors").read_bytes() == b"old weights"


@pytest.mark.parametrize(("override", "message"), [
    ("data.source=mnist", "unknown data source 'mnist' for task 'image-classification'; expected one of"),
    ("model.config={encoder: {num_latents: many}}", "model.config.encoder.num_latents must be an int, got 'many'"),
    ("model.preset=language-perceiver", "preset 'language-perceiver' is not a image-classification preset"),
])
def test_task_checks_come_before_lightning_loads(tmp_path, override, message):
    out = tmp_path / "run"
    done, _ = _fresh_interpreter(["fit", "--config", "digits", "--set", override, f"output_dir={out}"])
    first, loaded = done.stderr.strip().splitlines()
    assert done.returncode == 2 and message in first, done.stderr
    assert loaded == "LOADED ['torch']"  # the registry needs the task modules, not Lightning
    assert not out.exists()


def test_every_setting_has_a_description_and_is_listed_by_fit_help():
    from perceiverkit.cli._training import setting_rows
    from perceiverkit.train.config import TrainConfig

    rows = setting_rows(TrainConfig)
    assert {"trainer.max_steps", "trainer.early_stopping.patience", "optim.lr", "data.options", "loggers",
            "callbacks", "overwrite"} <= {path for path, *_ in rows}
    assert [path for path, _, _, description in rows if not description] == []
    help_text = build_parser(only="fit")._subparsers._group_actions[0].choices["fit"].format_help()  # type: ignore
    flat = " ".join(help_text.split())  # the descriptions are wrapped
    for path, kind, default, description in rows:
        assert f"  {path} = {default}  ({kind})" in help_text
        assert f"({kind}) {description}" in flat
    assert "trainer.max_steps = 1000  (an int)" in help_text


def test_every_task_default_model_config_builds():
    """A task with nothing but a data source set: its default model config is valid and the model builds
    (on the meta device: the defaults are the published, large sizes)."""
    from perceiverkit.tasks.registry import TASKS, get_task
    from perceiverkit.train.config import check_task_settings
    from perceiverkit.train.run import build_model

    assert len(TASKS) >= 7
    for name in TASKS:
        spec = get_task(name)
        config = load_train_config(name, None, [f"data.source={sorted(spec.data_sources)[0]}"])
        check_task_settings(config)
        with torch.device("meta"):
            model = build_model(config)
        assert isinstance(model, spec.model_class), name


# --- fit, validate, test ----------------------------------------------------------------------------------------------

class StepRecorder(L.Callback):
    """A callback given by class path in a config: appends each finished training step to ``path``."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_train_batch_end(self, trainer, *args) -> None:
        with self.path.open("a") as f:
            f.write(f"{trainer.global_step}\n")


def _val_losses(run: Path) -> dict[int, float]:
    """Optimiser step → validation loss logged after it. Lightning's loggers write a mid-epoch validation on the
    row of the last batch trained (optimiser step n's batch is row n - 1), hence the + 1."""
    with open(run / "csv" / "metrics.csv") as f:
        return {int(r["step"]) + 1: float(r["val/loss"]) for r in csv.DictReader(f) if r.get("val/loss")}


def _fit(tmp: Path, name: str, *overrides: str) -> tuple[int, str, str]:
    from contextlib import redirect_stderr, redirect_stdout
    from io import StringIO

    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(["fit", "--config", str(CONFIG), "--set", *QUIET, f"output_dir={tmp / name}", *overrides])
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """12 steps on digits, validating every 3 (4 validations), keeping the 2 best by val/loss; with an extra CSV
    logger and a callback, both given by class path."""
    tmp = tmp_path_factory.mktemp("lifecycle")
    extra = ("loggers=[csv, {class_path: lightning.pytorch.loggers.CSVLogger, init_args: "
             f"{{save_dir: '{tmp / 'extra'}', name: mine, version: ''}}}}]")
    recorder = f"callbacks=[{{class_path: {__name__}.StepRecorder, init_args: {{path: '{tmp / 'steps.txt'}'}}}}]"
    status, out, err = _fit(tmp, "run", "trainer.max_steps=12", "trainer.val_check_interval=3",
                            "trainer.check_val_every_n_epoch=null", "trainer.save_top_k=2", "trainer.monitor=val/loss",
                            extra, recorder)
    assert status == 0, err
    assert "best checkpoint:" in out
    return tmp / "run"


def test_fit_keeps_the_best_k_by_the_monitored_metric_and_last(run):
    losses = _val_losses(run)
    assert sorted(losses) == [3, 6, 9, 12]
    best_two = sorted(sorted(losses, key=losses.__getitem__)[:2])
    kept = sorted(int(p.stem.removeprefix("best-step")) for p in (run / "checkpoints").glob("best-step*.ckpt"))
    assert kept == best_two
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, mmap=True)["global_step"] == 12


def test_loggers_and_callbacks_by_class_path(run):
    with open(run.parent / "extra" / "mine" / "metrics.csv") as f:
        steps = {int(r["step"]) for r in csv.DictReader(f) if r.get("train/loss")}
    assert steps == set(range(12))  # Lightning logs step s before the optimiser steps: 0 … 11
    assert (run.parent / "steps.txt").read_text().split() == [str(s) for s in range(1, 13)]
    assert not (run / "tensorboard").exists()  # the config's loggers replace the default pair


def test_validate_best_reproduces_the_best_logged_validation(run, capsys):
    assert main(["validate", "--config", str(CONFIG), "--set", *QUIET, f"output_dir={run}",
                 "trainer.monitor=val/loss"]) == 0
    out = capsys.readouterr().out
    losses = _val_losses(run)
    best = min(losses, key=losses.__getitem__)
    assert f"best-step{best}.ckpt" in out
    printed = float(out.split("val/loss:")[1].split()[0])
    assert printed == pytest.approx(losses[best], abs=1e-4)


def test_test_reads_the_test_split(run, capsys):
    """test/accuracy of the last checkpoint against the model run by hand on scikit-learn's own test split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from perceiverkit import from_pretrained

    assert main(["test", "--config", str(CONFIG), "--set", *QUIET, f"output_dir={run}", "--ckpt", "last"]) == 0
    printed = float(capsys.readouterr().out.split("test/accuracy:")[1].split()[0])
    digits = load_digits()
    _, test_idx = train_test_split(range(len(digits.target)), test_size=0.25, random_state=0, shuffle=True,
                                   stratify=digits.target)
    images = torch.tensor(digits.images[sorted(test_idx)], dtype=torch.float32).div(16).unsqueeze(1)
    labels = torch.tensor(digits.target[sorted(test_idx)])
    model = from_pretrained(run / "checkpoints" / "last.ckpt").eval()
    with torch.no_grad():
        accuracy = (model(images).logits.argmax(-1) == labels).float().mean().item()
    assert printed == pytest.approx(accuracy, abs=1e-4)


def test_validate_without_checkpoints_is_one_line(tmp_path, capsys, monkeypatch):
    assert main(["validate", "--config", str(CONFIG), "--set", f"output_dir={tmp_path / 'none'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no best checkpoint" in err
    # A relative output_dir starts at the working directory (not the config's folder): the line says which.
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--config", str(CONFIG), "--set", "output_dir=runs/none"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"(output_dir starts at the working directory, {tmp_path})" in err, err


def test_a_missing_checkpoint_is_one_line_before_lightning_loads(tmp_path):
    done, _ = _fresh_interpreter(["validate", "--config", "digits", "--set", f"output_dir={tmp_path / 'none'}"])
    first, loaded = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "no best checkpoint" in first, done.stderr
    assert loaded == "LOADED ['torch']"  # the task checks need torch; the checkpoint's absence needs no Lightning


def test_train_is_an_alias_of_fit():
    assert COMMANDS["train"].run is COMMANDS["fit"].run
    assert COMMANDS["train"].add_arguments is COMMANDS["fit"].add_arguments


def test_early_stopping_ends_the_run_when_the_metric_stops_improving(tmp_path):
    # An improvement must be 10 nats of validation loss: the second validation (step 4) never is one.
    status, _, err = _fit(tmp_path, "stop", "trainer.max_steps=40", "trainer.val_check_interval=2",
                          "trainer.check_val_every_n_epoch=null",
                          "trainer.early_stopping={patience: 1, min_delta: 10, monitor: val/loss}")
    assert status == 0, err
    assert sorted(_val_losses(tmp_path / "stop")) == [2, 4]
    assert torch.load(tmp_path / "stop" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4


# --- the run folder ---------------------------------------------------------------------------------------------------

def test_a_finished_run_is_not_replaced_unless_asked(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    weights = (copy / "model" / "model.safetensors").read_bytes()
    status, _, err = _fit(tmp_path, "copy", "trainer.max_steps=3")
    assert status == 2 and err.count("\n") == 1 and "already holds a finished run" in err
    assert (copy / "model" / "model.safetensors").read_bytes() == weights
    status, _, err = _fit(tmp_path, "copy", "trainer.max_steps=3", "overwrite=true", "trainer.val_check_interval=3",
                          "trainer.check_val_every_n_epoch=null")
    assert status == 0, err
    assert sorted(_val_losses(copy)) == [3]  # the old run's logs are gone, not appended to
    assert sorted(p.name for p in (copy / "checkpoints").iterdir()) == ["best-step3.ckpt", "last.ckpt"]
    assert (copy / "model" / "model.safetensors").read_bytes() != weights


def test_a_resumed_run_keeps_the_csv_rows_logged_before_its_checkpoint(tmp_path):
    """Lightning's CSVLogger deletes a metrics.csv it finds, so resume=auto used to leave only the resumed part's
    rows (and a model card drawing half a curve). The oracle is an uninterrupted run of the same 8 steps: the
    resumed run's log holds the first run's rows unchanged and the same validation losses at every step."""
    settings = ("trainer.val_check_interval=2", "trainer.check_val_every_n_epoch=null", "data.shuffle=false")
    status, _, err = _fit(tmp_path, "resumed", "trainer.max_steps=4", *settings)
    assert status == 0, err
    with open(tmp_path / "resumed" / "csv" / "metrics.csv") as f:
        first = [row for row in csv.DictReader(f)]
    status, _, err = _fit(tmp_path, "resumed", "trainer.max_steps=8", "resume=auto", *settings)
    assert status == 0, err
    with open(tmp_path / "resumed" / "csv" / "metrics.csv") as f:
        after = [row for row in csv.DictReader(f)]
    kept = [{k: v for k, v in row.items() if k in first[0]} for row in after[:len(first)]]
    assert kept == first
    status, _, err = _fit(tmp_path, "whole", "trainer.max_steps=8", *settings)
    assert status == 0, err
    with open(tmp_path / "whole" / "csv" / "metrics.csv") as f:
        whole = [row for row in csv.DictReader(f)]
    # In order rather than by step: a run resumed from a checkpoint written at the end of training starts a new
    # epoch, and Lightning then logs its rows one step number further on (5 … 8 instead of 4 … 7).
    for name in ("train/loss", "val/loss"):
        ours = [float(r[name]) for r in after if r.get(name)]
        assert ours == pytest.approx([float(r[name]) for r in whole if r.get(name)], abs=1e-5), name
    assert len([r for r in after if r.get("train/loss")]) == 8


@pytest.mark.parametrize(("override", "message"), [
    # found only at the first validation, after the folder was made: it is removed again
    ("trainer.monitor=val/nope", "'val/nope'"),
    # a name that is the start of a logged one: both logged names are still listed
    ("trainer.early_stopping={patience: 2, monitor: val/acc}",
     "'val/acc' is not a metric the image-classification task logs; its validation metrics are ['val/loss', "
     "'val/accuracy']"),
    # found by running one validation example through the model, before the folder is made
    ("model.config.image.in_channels=3", "the data does not fit the model (images must have 3 channels"),
    # found when the callback is imported, before the folder is made
    ("callbacks=[{class_path: lightning.pytorch.callbacks.NoSuchCallback}]",
     "callbacks[0].class_path: module 'lightning.pytorch.callbacks' has no 'NoSuchCallback'"),
    ("callbacks=[{class_path: lightning.pytorch.callbacks.Timer, init_args: {durations: 1}}]",
     "callbacks[0].init_args do not fit lightning.pytorch.callbacks.Timer"),
])
def test_a_failed_start_leaves_no_run_folder(tmp_path, override, message):
    status, _, err = _fit(tmp_path, "failed", "trainer.max_steps=6", "trainer.val_check_interval=2",
                          "trainer.check_val_every_n_epoch=null", override)
    assert status == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "failed").exists()


def _two_folders(tmp: Path, per_class: int, validation_size: int) -> list[str]:
    """``per_class`` 8×8 grey images in each of two class folders (dark, light) under ``tmp/images``; the --set
    settings that train the digits config on them."""
    from PIL import Image

    rng = torch.Generator().manual_seed(0)
    for label in ("dark", "light"):
        (tmp / "images" / label).mkdir(parents=True)
        for i in range(per_class):
            pixels = torch.randint(0, 100, (8, 8), generator=rng) + (150 if label == "light" else 0)
            Image.fromarray(pixels.to(torch.uint8).numpy(), mode="L").save(tmp / "images" / label / f"{i}.png")
    return ["data.source=image-folder", f"data.options={{train_root: '{tmp / 'images'}', image_size: 8, "
            f"grayscale: true, validation_size: {validation_size}}}"]


def test_training_data_smaller_than_a_batch_is_refused_before_the_run_folder(tmp_path, capsys):
    """32 training images and batch_size 64: the shuffled loader keeps full batches only, so it has none. This used
    to 'train' zero steps, write the untrained model as a finished run and exit 0."""
    settings = [*_two_folders(tmp_path, 20, validation_size=8), "model.config.num_labels=2", "trainer.max_steps=2",
                f"output_dir={tmp_path / 'run'}", *QUIET]
    assert main(["fit", "--config", str(CONFIG), "--set", *settings, "data.batch_size=64"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "the training data has 32 examples, fewer than one batch (data.batch_size 64)" in err
    assert "data.batch_size to at most 32" in err
    assert not (tmp_path / "run").exists()
    assert main(["fit", "--config", str(CONFIG), "--set", *settings, "data.batch_size=32"]) == 0  # one full batch


def test_test_on_a_source_without_a_test_split_is_one_line(tmp_path, capsys):
    """An image folder has no test split: `test` says so (and where to look instead) rather than measuring on
    something else."""
    settings = [*_two_folders(tmp_path, 6, validation_size=2), "model.config.num_labels=2", "data.batch_size=4",
                f"output_dir={tmp_path / 'run'}", *QUIET]
    assert main(["fit", "--config", str(CONFIG), "--set", "trainer.max_steps=2", *settings]) == 0
    capsys.readouterr()
    assert main(["test", "--config", str(CONFIG), "--set", *settings, "--ckpt", "last"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data source 'image-folder' has no test split" in err, err
