"""ONNX export of every task model, checked in onnxruntime against PyTorch (also on other dynamic shapes)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from perceiverkit.cli import main
from perceiverkit.export import export_onnx, export_spec
from perceiverkit.resources import packaged_config
from perceiverkit.train import build_model, load_train_config


def _model(name: str):
    torch.manual_seed(0)
    return build_model(load_train_config(None, packaged_config(name))).eval()


@pytest.mark.parametrize("name", ["digits", "wordnet", "mlm", "point-clouds", "flow", "autoencoding"])
@pytest.mark.slow
def test_export_matches_pytorch(tmp_path, name):
    model = _model(name)
    path, diff = export_onnx(model, tmp_path / f"{name}.onnx")
    assert path.is_file() and diff is not None and diff < 1e-4


@pytest.mark.slow
def test_text_export_has_dynamic_batch_and_length(tmp_path):
    model = _model("mlm")
    path, _ = export_onnx(model, tmp_path / "mlm.onnx", batch_size=2, sequence_length=16)
    session = ort.InferenceSession(str(path))
    # the mlm config reads up to 32 bytes: exported at 2×16, run at 3×28
    ids = torch.randint(6, 262, (3, 28))
    mask = torch.ones_like(ids)
    mask[1, 20:] = 0
    got = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    with torch.no_grad():
        expected = model(ids, mask).logits.numpy()
    assert got.shape == (3, 28, 262) and np.abs(got - expected).max() < 1e-4


@pytest.mark.slow
def test_export_cli(tmp_path, capsys):
    _model("digits").save_pretrained(tmp_path / "digits")
    assert main(["export-onnx", str(tmp_path / "digits"), str(tmp_path / "d.onnx")]) == 0
    assert "onnxruntime matches PyTorch" in capsys.readouterr().out


def test_unknown_task_is_refused():
    class Fake:
        task = "astrology"
        config = None

    with pytest.raises(ValueError, match="no ONNX export for task 'astrology'"):
        export_spec(Fake())  # type: ignore[arg-type]
