"""``benchmarks/gpu.sh`` runs on a short GPU lease: every phase's options must be ones ``perceiverkit bench``
accepts and can resolve, so that no lease is spent on a typo. Parsed from the script itself."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch

from perceiverkit.benchmark import BenchOptions
from perceiverkit.cli import build_parser

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "gpu.sh"


def _table(name: str) -> dict[str, str]:
    """The bash associative array ``name`` of the script: phase → value."""
    body = re.search(rf"declare -A {name}=\((.*?)\n?\)\n", SCRIPT.read_text(), re.S)
    assert body, f"no {name} table in {SCRIPT}"
    return {key: value.strip('"') for key, value in re.findall(r'\[([\w-]+)\]=("[^"]*"|\S+)', body.group(1))}


ARGS, LIMITS = _table("ARGS"), _table("LIMIT")


def test_every_phase_has_a_time_limit_and_the_default_phases_exist():
    assert ARGS and set(ARGS) == set(LIMITS)
    assert all(int(limit) > 0 for limit in LIMITS.values())
    default = re.search(r'PHASES="\$\{PHASES:-([^}]*)\}"', SCRIPT.read_text())
    assert default and set(default.group(1).split()) <= set(ARGS)


@pytest.mark.parametrize("phase", sorted(ARGS))
def test_phase_options_parse_and_resolve(phase, monkeypatch):
    args = build_parser().parse_args(["bench", "--device", "cuda", "--scale", "full", *shlex.split(ARGS[phase]),
                                      "--out", "unused"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # resolve() checks for a GPU, nothing more
    options = BenchOptions.from_args(args).resolve()
    assert (options.scale, options.device) == ("full", "cuda") and options.steps >= 1 and options.warmup >= 1
