"""The global switch: every architecture gives the same outputs and gradients on the fast and the reference path,
and layers/ imports nothing of the speed paths."""

from __future__ import annotations

import ast
import tempfile
from pathlib import Path

import pytest
import torch

import perceiverkit
from perceiverkit.accel import fast_paths_enabled, reference_path, use_fast_paths
from perceiverkit.benchmark import WORKLOADS, relative_error
from perceiverkit.benchmark.runner import _build_transformers
from perceiverkit.checkpoints import from_pretrained

INFERENCE = [name for name, w in WORKLOADS.items() if w.mode == "infer"]


def test_reference_path_restores_the_setting_even_after_an_error():
    assert fast_paths_enabled()
    with pytest.raises(RuntimeError), reference_path():
        assert not fast_paths_enabled()
        raise RuntimeError
    assert fast_paths_enabled()
    use_fast_paths(False)
    try:
        with reference_path():
            pass
        assert not fast_paths_enabled()
    finally:
        use_fast_paths(True)
    with pytest.raises(TypeError, match="True or False"):
        use_fast_paths(1)  # type: ignore[arg-type]


def _first(output):
    return output if isinstance(output, torch.Tensor) else next(iter(output.values()))


@pytest.mark.parametrize("name", INFERENCE)
def test_whole_models_agree_on_both_paths_with_gradients(name):
    """Each workload's tiny model (all six architectures): outputs and parameter gradients on the fast paths equal
    those of the reference path to float32 rounding."""
    case = WORKLOADS[name].case("tiny", None)
    inputs = case.make_inputs(torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        _build_transformers(case, 0, Path(tmp))
        ours = from_pretrained(tmp).eval()

    def run():
        ours.zero_grad()
        output = _first(case.run_ours(ours, inputs, ours.config)).float()
        output.square().mean().backward()
        return output.detach(), {n: p.grad.clone() for n, p in ours.named_parameters() if p.grad is not None}

    fast, fast_grads = run()
    with reference_path():
        reference, reference_grads = run()
    assert relative_error(fast, reference) < 1e-5, name
    assert fast_grads.keys() == reference_grads.keys() and fast_grads
    for key, grad in reference_grads.items():
        assert relative_error(fast_grads[key], grad) < 1e-4, (name, key)


def test_layers_import_nothing_above_themselves():
    """layers/ is the bottom of the import arrows: it may import torch and itself, never accel/ or the model."""
    layers = Path(perceiverkit.__file__).parent / "layers"
    for path in layers.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                pytest.fail(f"{path.name} imports ..{node.module or ''}: layers/ must import nothing above itself")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(n.startswith("perceiverkit") for n in names), (path.name, names)


@pytest.mark.parametrize("name", INFERENCE)
def test_reference_path_runs_no_accel_code(name):
    """With fast paths off, no function of perceiverkit/accel/ runs in a forward pass but the read of the switch
    itself (the switch removes every installed path from layers/), while the default run goes through accel/."""
    import sys

    import perceiverkit.accel as accel

    accel_dir = str(Path(accel.__file__).parent)
    case = WORKLOADS[name].case("tiny", None)
    inputs = case.make_inputs(torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        _build_transformers(case, 0, Path(tmp))
        ours = from_pretrained(tmp).eval()

    def accel_calls() -> set[str]:
        called: set[str] = set()

        def profile(frame, event, arg):
            if event == "call" and frame.f_code.co_filename.startswith(accel_dir):
                called.add(frame.f_code.co_qualname)

        sys.setprofile(profile)
        try:
            with torch.no_grad():
                case.run_ours(ours, inputs, ours.config)
        finally:
            sys.setprofile(None)
        return called

    assert accel_calls(), "the default run should take the fast paths' dispatch"
    with reference_path():
        assert accel_calls() <= {"fast_paths_enabled"}
