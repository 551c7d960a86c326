"""Training Perceiver AR: packed byte windows are the corpus's own bytes, and a short run learns the bytes'
statistics (bits per byte well under the 8 of a uniform guess)."""

from __future__ import annotations

import json

import pytest

from perceiverkit.config import ConfigError
from perceiverkit.datasets import read_jargon_file
from perceiverkit.resources import packaged_config
from perceiverkit.tasks.causal_lm import PerceiverARConfig
from perceiverkit.train import load_train_config, train
from perceiverkit.train.causal_lm import PackedTextData
from perceiverkit.train.config import DataSpec

MODEL = PerceiverARConfig(d_model=32, num_latents=16, num_self_attention_layers=1, num_heads=2,
                          num_cross_attention_heads=2, widening_factor=2)


def test_windows_are_consecutive_corpus_bytes_with_labels_equal_to_inputs() -> None:
    data = PackedTextData(DataSpec(source="packed-text", batch_size=4,
                                   options={"corpus": "jargon", "sequence_length": 48}), MODEL)
    data.setup("fit")
    batch = data.collate([data.train_set[i] for i in range(3)])  # type: ignore[index]
    assert batch["input_ids"].shape == (3, 48) and (batch["labels"] == batch["input_ids"]).all()
    corpus = read_jargon_file().encode("utf-8")
    for row, (start, end) in zip(batch["input_ids"], data.train_set.spans[:3], strict=True):  # type: ignore[union-attr]
        assert bytes((row - 6).tolist()) == corpus[start:end]


@pytest.mark.parametrize(("options", "message"), [
    ({"sequence_length": 8}, r"sequence_length \(8\) must be at least the model's num_latents \(16\)"),
    ({"corpus": "poetry"}, "unknown corpus 'poetry'"),
])
def test_bad_data_options_are_one_line(options, message) -> None:  # type: ignore[no-untyped-def]
    data = PackedTextData(DataSpec(source="packed-text", batch_size=4, options=options), MODEL)
    with pytest.raises(ConfigError, match=message):
        data.setup("fit")


@pytest.mark.slow
def test_a_short_run_learns_the_byte_statistics(tmp_path) -> None:  # type: ignore[no-untyped-def]
    overrides = [f"output_dir={tmp_path}", "trainer.max_steps=60", "trainer.val_check_interval=60",
                 "trainer.limit_val_batches=4", "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=10",
                 "data.batch_size=8", "data.options.sequence_length=128", "model.config.d_model=64",
                 "model.config.num_latents=32", "model.config.num_self_attention_layers=2", "optim.lr=0.003",
                 "optim.warmup_steps=10"]
    train(load_train_config(None, packaged_config("perceiver-ar"), overrides))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["val/bits_per_byte"] < 5.0, metrics  # uniform over the 256 bytes: 8 bits
