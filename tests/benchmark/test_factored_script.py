"""``benchmarks/factored_attention.py`` runs and reports both paths agreeing, with fewer FLOPs when factored."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "factored_attention.py"


def test_script_reports_agreeing_paths_and_the_flop_saving(capsys):
    spec = importlib.util.spec_from_file_location("factored_attention", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--presets", "vision-perceiver-conv", "--repeats", "1"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| vision-perceiver-conv"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == "325 / 322"  # 64 stem channels + 258 Fourier features (+ 3) against 322 inputs
    factored, projected = (float(x) for x in re.findall(r"[\d.]+", cells[5].replace(",", "")))
    assert factored < projected
    assert float(cells[6]) < 1e-5
