"""Every stage of every task model fits the written interfaces (interfaces.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from perceiverkit.benchmark import WORKLOADS
from perceiverkit.benchmark.runner import _build_transformers
from perceiverkit.checkpoints import from_pretrained
from perceiverkit.interfaces import Decoder, Postprocessor, Preprocessor

INFERENCE = [name for name, w in WORKLOADS.items() if w.mode == "infer"]


@pytest.mark.parametrize("name", INFERENCE)
def test_task_models_are_built_from_the_interfaces(name):
    case = WORKLOADS[name].case("tiny", None)
    with tempfile.TemporaryDirectory() as tmp:
        _build_transformers(case, 0, Path(tmp))
        perceiver = from_pretrained(tmp).perceiver
    assert isinstance(perceiver.decoder, Decoder)
    assert perceiver.preprocessor is None or isinstance(perceiver.preprocessor, Preprocessor)
    assert perceiver.postprocessor is None or isinstance(perceiver.postprocessor, Postprocessor)
    if perceiver.preprocessor is not None:
        assert perceiver.preprocessor.num_channels == perceiver.encoder.input_channels
