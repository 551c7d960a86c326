"""Shared fixtures (plain helpers are in helpers.py). Every test dependency must be installed: a missing one stops
the run with an install hint instead of silently skipping part of the suite."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Callable

import pytest

# Import names of the `test` extra in pyproject.toml (and of the extras it pulls in).
_TEST_DEPENDENCIES = ("xdist", "hypothesis", "transformers", "safetensors", "flow_vis", "PIL", "skimage", "av",
                      "skvideo", "lightning", "tensorboard", "yaml", "sklearn", "cv2", "onnx", "onnxruntime",
                      "onnxscript", "matplotlib", "datasets", "pyarrow")
_missing = [name for name in _TEST_DEPENDENCIES if importlib.util.find_spec(name) is None]
if _missing:
    raise pytest.UsageError(f"missing test dependencies: {', '.join(_missing)}; "
                            f"install them with `pip install -e \".[test]\"` (or `make venv`)")

import torch  # noqa: E402

from .helpers import randomize_  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, give each worker its share of the cores: with every worker running as many threads as
    there are cores, threads wait on each other and small tests get many times slower."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        threads = max(1, len(os.sched_getaffinity(0)) // int(workers))
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # and for the training runs tests start in subprocesses


@pytest.fixture
def save_hf(tmp_path: Path) -> Callable[..., tuple[Any, Path]]:
    """Build a random-weight Transformers model of class ``cls`` and save it; returns (model, directory)."""

    def build(cls: type, config: Any, pickle_format: bool = False, name: str = "hf") -> tuple[Any, Path]:
        torch.manual_seed(0)
        model = randomize_(cls(config)).eval()
        directory = tmp_path / name
        if pickle_format:  # the legacy layout of older hub checkpoints: config.json + pytorch_model.bin
            model.config.architectures = [cls.__name__]
            model.config.save_pretrained(directory)
            torch.save(model.state_dict(), directory / "pytorch_model.bin")
        else:
            model.save_pretrained(directory)
        return model, directory

    return build
