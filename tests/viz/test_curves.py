"""Training-curve PNGs from a Lightning CSV log."""

from __future__ import annotations

import pytest
from PIL import Image

from perceiverkit.cli import main
from perceiverkit.viz import plot_curves, read_metrics


def _log(tmp_path):
    run = tmp_path / "run"
    (run / "csv").mkdir(parents=True)
    rows = ["epoch,step,train/loss,val/accuracy,lr-AdamW"]
    rows += [f"0,{s},{2.0 / (s + 1):.4f},,0.001" for s in range(0, 50, 10)]
    rows += ["0,49,,0.8,"]
    (run / "csv" / "metrics.csv").write_text("\n".join(rows) + "\n")
    return run


def test_read_and_plot(tmp_path):
    series = read_metrics(_log(tmp_path) / "csv" / "metrics.csv")
    assert series["train/loss"][0] == (0, 2.0) and series["val/accuracy"] == [(49, 0.8)]
    path = plot_curves(series, ["train/loss"], tmp_path / "loss.png", size=(300, 200))
    image = Image.open(path)
    assert image.size == (300, 200) and len(set(image.getdata())) > 2  # something was drawn
    with pytest.raises(ValueError, match="not in the log"):
        plot_curves(series, ["val/epe"], tmp_path / "x.png")


def test_plot_cli(tmp_path, capsys):
    run = _log(tmp_path)
    assert main(["plot", str(run)]) == 0
    assert (run / "loss.png").is_file() and (run / "metrics.png").is_file()
    assert main(["plot", str(tmp_path / "missing")]) == 2
