"""``perceiverkit evaluate`` and :func:`perceiverkit.train.evaluate.evaluate`: the task's metrics on a named split.

The oracle is computed without Lightning or the data modules: scikit-learn's digits, split as its own
``train_test_split`` splits them (stratified, 25 % test, seed 0), pushed through the saved model by hand; the
accuracy and mean cross-entropy over all test images must equal what evaluate reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from perceiverkit import from_pretrained
from perceiverkit.cli import main
from perceiverkit.config import ConfigError
from perceiverkit.datasets import Digits
from perceiverkit.train import load_train_config, train
from perceiverkit.train.datamodules import carve_validation
from perceiverkit.train.evaluate import evaluate, read_evaluation_data, run_config_of

from .cli_runs import CONFIG, QUIET
from .test_image_folder_roundtrip import _config, folders  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "digits"
    config = load_train_config(None, CONFIG, [*QUIET, "trainer.max_steps=30", "trainer.accelerator=cpu",
                                              f"output_dir={out}"])
    train(config)
    return out


def _oracle(model, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        logits = model(pixel_values=images).logits
    return (logits.argmax(-1) == labels).float().mean().item(), F.cross_entropy(logits, labels).item()


def _sklearn_test_split() -> tuple[torch.Tensor, torch.Tensor]:
    bunch = load_digits()
    _, test = train_test_split(range(len(bunch.target)), test_size=0.25, random_state=0, stratify=bunch.target)
    test = sorted(test)
    images = torch.tensor(bunch.images[test], dtype=torch.float32).div(16).unsqueeze(1)
    return images, torch.tensor(bunch.target[test])


def test_test_split_metrics_equal_a_hand_computed_pass(digits_run):
    metrics = evaluate(digits_run, read_evaluation_data(digits_run / "config.yaml"), "test", accelerator="cpu")
    images, labels = _sklearn_test_split()
    accuracy, loss = _oracle(from_pretrained(digits_run / "model"), images, labels)
    assert len(labels) == 450
    assert metrics["test/accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert metrics["test/loss"] == pytest.approx(loss, rel=1e-5)
    assert accuracy > 0.2  # 30 steps learn something (chance: 0.1): the oracle is not a constant


def test_validation_split_is_the_carved_training_data(digits_run):
    metrics = evaluate(digits_run / "checkpoints" / "last.ckpt", read_evaluation_data("digits"), "validation",
                       accelerator="cpu")
    train_split = Digits("train", seed=0)
    _, val = carve_validation(len(train_split), 0.2, 0, "validation_size")
    images = torch.stack([train_split[i][0] for i in val])
    labels = torch.tensor([train_split[i][1] for i in val])
    accuracy, loss = _oracle(from_pretrained(digits_run / "model"), images, labels)
    assert set(metrics) == {"val/accuracy", "val/loss"}
    assert metrics["val/accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert metrics["val/loss"] == pytest.approx(loss, rel=1e-5)


def test_command_reads_the_runs_data_and_prints_json(digits_run, capsys):
    assert main(["evaluate", "--model", str(digits_run / "model"), "--accelerator", "cpu", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["split"] == "test" and printed["data"] == str(digits_run / "config.yaml")
    images, labels = _sklearn_test_split()
    accuracy, _ = _oracle(from_pretrained(digits_run / "model"), images, labels)
    assert printed["metrics"]["test/accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert main(["evaluate", "--model", str(digits_run), "--data", "digits", "--split", "validation",
                 "--accelerator", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{digits_run} on the validation split of digits:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["val/accuracy", "val/loss"]


def test_run_config_is_found_from_the_model_folder_and_checkpoints(digits_run, tmp_path):
    expected = digits_run / "config.yaml"
    assert run_config_of(digits_run) == run_config_of(digits_run / "model") == expected
    assert run_config_of(digits_run / "checkpoints" / "last.ckpt") == expected
    assert run_config_of(tmp_path) is None


@pytest.mark.parametrize("words,message", [
    (["--model", "language-perceiver", "--data", "digits"], "names a preset"),
    (["--data", "digits", "--set", "optim.lr=1"], "evaluate takes data settings only"),
    (["--data", "nowhere.yaml"], "no config file at nowhere.yaml"),
    (["--data", "wordnet-lexnames"], "unknown data source 'wordnet-lexnames' for task 'image-classification'"),
])
def test_bad_input_is_one_line(digits_run, words, message, capsys):
    args = ["evaluate", "--model", str(digits_run), *words] if "--model" not in words else ["evaluate", *words]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_model_outside_a_run_needs_data(digits_run, tmp_path, capsys):
    from_pretrained(digits_run / "model").save_pretrained(tmp_path / "copy")
    assert main(["evaluate", "--model", str(tmp_path / "copy")]) == 2
    assert "name the data with --data" in capsys.readouterr().err


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory, folders: Path) -> tuple[Path, Path]:  # noqa: F811
    out = tmp_path_factory.mktemp("runs") / "shapes"
    train(load_train_config(None, _config(folders, out, image_size=12)))
    return out, folders


def test_data_that_differs_from_the_models_is_refused(folder_run, tmp_path):
    run, images = folder_run
    data = read_evaluation_data(run / "config.yaml", ["data.options.image_size=10"])
    with pytest.raises(ConfigError, match="prepares inputs differently from the model's saved processor"):
        evaluate(run, data, "validation", accelerator="cpu")
    renamed = tmp_path / "renamed"
    for split in ("train", "val"):
        for number, kind in enumerate(sorted((images / split).iterdir())):
            (renamed / split).mkdir(parents=True, exist_ok=True)
            (renamed / split / f"class{number}").symlink_to(kind)
    data = read_evaluation_data(run / "config.yaml", [f"data.options.train_root={renamed / 'train'}",
                                                      f"data.options.val_root={renamed / 'val'}"])
    with pytest.raises(ConfigError, match=r"names the classes \['class0', 'class1', 'class2'\] but the model was "
                                          r"trained on \['circle', 'square', 'stripes'\]"):
        evaluate(run, data, "validation", accelerator="cpu")


def test_source_without_a_test_split_is_one_line(folder_run, capsys, monkeypatch):
    run, _ = folder_run
    assert main(["evaluate", "--model", str(run), "--accelerator", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no test split" in err, err
    assert "evaluate --split validation" in err  # what to run instead

    # Answered before a Trainer is made (whose device banners used to come before the line).
    def no_trainer(*args, **kwargs):
        raise AssertionError("a Trainer was made")

    monkeypatch.setattr("lightning.Trainer", no_trainer)
    with pytest.raises(ConfigError, match="data source 'image-folder' has no test split"):
        evaluate(run, read_evaluation_data(run / "config.yaml"), "test", accelerator="cpu")


def test_data_with_another_number_of_classes_is_refused_without_advice_to_retrain(folder_run, capsys):
    """The model's classes are fixed: the line says so instead of the training advice to set num_labels."""
    run, _ = folder_run
    assert main(["evaluate", "--model", str(run), "--data", "digits", "--split", "validation",
                 "--accelerator", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "the data source 'digits' has 10 classes but the model predicts 3" in err and "num_labels" not in err


def test_a_preset_is_refused_before_lightning_loads():
    import subprocess
    import sys

    code = ("import sys\nfrom perceiverkit.cli import main\n"
            "status = main(['evaluate', '--model', 'language-perceiver', '--data', 'digits'])\n"
            "print('LIGHTNING', 'lightning' in sys.modules, file=sys.stderr)\nsys.exit(status)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 2 and "names a preset" in lines[0], done.stderr
    assert lines[1] == "LIGHTNING False"
