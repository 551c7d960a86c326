"""``benchmarks/perceiver_ar_speed.py`` without the peer: our timing row, and peak memory that grows linearly with
the context at a fixed latent count (each point the OS's peak resident size, ``VmHWM``, of a fresh process)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "perceiver_ar_speed.py"
TINY = ["--d-model", "32", "--latents", "16", "--layers", "1", "--heads", "2"]


def run(argv: list[str]) -> int:
    spec = importlib.util.spec_from_file_location("perceiver_ar_speed", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return int(module.main(argv))


def table_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| implementation") and "context" not in line]


def test_speed_prints_our_row(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["speed", *TINY, "--context", "64", "--prompt", "32", "--new-tokens", "8", "--short-prompt", "4",
                "--repeats", "1", "--batch", "2"]) == 0
    rows = {row[0]: row[1:] for row in table_rows(capsys.readouterr().out)}
    assert all(float(value) > 0 for value in rows["ours (perceiverkit)"])


def test_memory_grows_linearly_with_the_context(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["memory", "--d-model", "64", "--latents", "16", "--layers", "1", "--heads", "2",
                "--contexts", "4096", "16384", "65536"]) == 0
    out = capsys.readouterr().out
    rise = {int(row[0].replace(",", "")): float(row[1]) for row in table_rows(out)}
    assert rise[4096] < rise[16384] < rise[65536]
    # Four times the context costs about four times the memory (6× allows for the allocator's granularity);
    # attention over the whole context would cost 16× (the 65,536² score matrix alone is 16 GiB).
    assert rise[65536] < 6 * rise[16384]
    assert re.search(r"fit: .* KiB x context", out)
