"""``perceiverkit generate`` refuses an empty prompt in one line, before anything is printed (the model and the
pipeline refuse it too: tests/tasks/test_causal_lm.py, tests/pipelines/test_text_generation.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceiverkit.cli import main
from perceiverkit.tasks.causal_lm import PerceiverAR, PerceiverARConfig


def test_generate_command_refuses_an_empty_prompt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    PerceiverAR(PerceiverARConfig(d_model=16, num_latents=4, num_self_attention_layers=1, num_heads=2,
                                  num_cross_attention_heads=2)).save_pretrained(tmp_path)
    assert main(["generate", "--model", str(tmp_path), "", "--max-new-tokens", "3", "--device", "cpu"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "the prompt is empty" in captured.err
