"""Perceiver AR on the whole training road: a Hugging Face ``datasets`` text source packed into byte windows
(checked against the byte stream built by hand from the generated files), short fits, bf16-mixed against
float32, activation checkpointing against plain backward, and 2-process DDP / FSDP2 (gloo, CPU) against one
process with twice the batch."""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from safetensors.torch import load_file

from perceiverkit import from_pretrained
from perceiverkit.config import ConfigError
from perceiverkit.datasets.hf import ArrowTextBytes
from perceiverkit.tasks.causal_lm import PerceiverARConfig
from perceiverkit.train import build_model, load_train_config, train
from perceiverkit.train.causal_lm import HFPackedTextData
from perceiverkit.train.config import DataSpec

from .cli_runs import SGD, train_cli

WORDS = "a byte stream of ünïcödé owls and the quiet river bends under seven grey bridges".split()
MODEL = PerceiverARConfig(d_model=32, num_latents=16, num_self_attention_layers=1, num_heads=2,
                          num_cross_attention_heads=2, widening_factor=2)
OFFSET = 6  # the ByteTokenizer's special ids come before the 256 bytes


def _documents(count: int, seed: int) -> list[str]:
    """Distinct documents of random lengths (each starts with its own number, so no window repeats)."""
    rng = np.random.default_rng(seed)
    return [f"doc {seed}-{i}: " + " ".join(rng.choice(WORDS, size=int(rng.integers(3, 30)))) for i in range(count)]


def _packed(documents: list[str]) -> bytes:
    return "\n\n".join(documents).encode("utf-8")


def _data(tmp_path: Path, model: PerceiverARConfig = MODEL, **options: object) -> HFPackedTextData:
    spec = DataSpec(source="hf-dataset", batch_size=4, base_dir=str(tmp_path),
                    options={"cache_dir": "hf-cache", **options})
    data = HFPackedTextData(spec, model)
    data.setup("fit")
    return data


def _bytes_of(data: HFPackedTextData, split: str) -> list[bytes]:
    dataset = data.train_set if split == "train" else data.val_set
    batch = data.collate([dataset[i] for i in range(len(dataset))])  # type: ignore[arg-type]
    assert (batch["labels"] == batch["input_ids"]).all()
    return [bytes((row - OFFSET).tolist()) for row in batch["input_ids"]]


def _cut(stream: bytes, length: int) -> list[bytes]:
    return [stream[i:i + length] for i in range(0, len(stream) - length + 1, length)]


def test_parquet_train_and_validation_splits_are_packed_like_packed_text(tmp_path) -> None:
    train_docs, val_docs = _documents(120, seed=1), _documents(30, seed=2)
    pq.write_table(pa.table({"text": train_docs, "id": list(range(120))}), tmp_path / "train.parquet")
    pq.write_table(pa.table({"text": val_docs, "id": list(range(30))}), tmp_path / "held.parquet")
    data = _data(tmp_path, data_files={"train": "train.parquet", "validation": "held.parquet"}, sequence_length=40)

    # Every window is 40 consecutive bytes of the rows joined by a blank line, in order, none skipped, the
    # incomplete tail dropped; validation comes from the validation split only.
    assert _bytes_of(data, "train") == _cut(_packed(train_docs), 40)
    assert _bytes_of(data, "val") == _cut(_packed(val_docs), 40)
    assert len(data.train_set) == len(_packed(train_docs)) // 40  # type: ignore[arg-type]
    # Read from the memory-mapped Arrow files datasets converted the Parquet into: the source keeps the rows'
    # byte lengths, not their text.
    source = data.train_set.source  # type: ignore[attr-defined]
    assert isinstance(source, ArrowTextBytes) and source.lengths.nbytes == 8 * 120
    cache = data.splits()["train"].cache_files
    assert cache and str(tmp_path / "hf-cache") in cache[0]["filename"]


def test_jsonl_without_validation_split_holds_out_one_contiguous_region(tmp_path) -> None:
    docs = _documents(200, seed=3)
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps({"body": d}) + "\n" for d in docs), encoding="utf-8")
    data = _data(tmp_path, path="corpus.jsonl", text_column="body", sequence_length=32, val_fraction=0.1)
    stream = _packed(docs)
    val = _bytes_of(data, "val")
    held = b"".join(val)
    start = stream.find(held)
    assert val and start >= 0 and stream.find(held, start + 1) == -1
    size = int(0.1 * len(stream) + 0.5)  # the documented share of the bytes, as whole windows
    assert len(val) == size // 32 and start + size <= len(stream)
    # Training: the bytes before the held-out region, then those after it, each cut into whole windows.
    assert _bytes_of(data, "train") == _cut(stream[:start], 32) + _cut(stream[start + size:], 32)


@pytest.mark.parametrize(("options", "message"), [
    ({"text_column": "words"}, r"no column 'words' \(columns: \['text'\]\); set data.options.text_column"),
    ({"sequence_length": 8}, r"sequence_length \(8\) must be at least the model's num_latents \(16\)"),
    ({"sequence_length": 4096}, "no train window of 4096 bytes fits"),
    ({"validation_size": 0.1}, "has no option"),
])
def test_bad_options_are_one_line(tmp_path, options, message) -> None:  # type: ignore[no-untyped-def]
    pq.write_table(pa.table({"text": _documents(20, seed=4)}), tmp_path / "train.parquet")
    with pytest.raises(ConfigError, match=message) as caught:
        _data(tmp_path, path="train.parquet", **options)
    assert "\n" not in str(caught.value)


def _config(tmp_path: Path, steps: int, *extra: str) -> Path:
    """A tiny causal-lm run on a generated Parquet corpus (a train and a validation split)."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    pq.write_table(pa.table({"text": _documents(400, seed=5)}), data / "train.parquet")
    pq.write_table(pa.table({"text": _documents(60, seed=6)}), data / "validation.parquet")
    config = {"task": "causal-lm", "seed": 0,
              "model": {"config": {"d_model": 32, "num_latents": 16, "num_self_attention_layers": 2, "num_heads": 2,
                                   "num_cross_attention_heads": 2, "widening_factor": 2}},
              "data": {"source": "hf-dataset", "batch_size": 8,
                       "options": {"path": "data", "cache_dir": "hf-cache", "sequence_length": 64}},
              "optim": {"lr": 0.003, "warmup_steps": 2},
              "trainer": {"max_steps": steps, "accelerator": "cpu", "enable_progress_bar": False,
                          "log_every_n_steps": 1, "limit_val_batches": 4, "val_check_interval": steps,
                          "check_val_every_n_epoch": None}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_three_step_fit_on_a_parquet_folder_saves_a_model(tmp_path) -> None:
    result = train(load_train_config(None, _config(tmp_path, 3), [f"output_dir={tmp_path / 'run'}"]))
    assert math.isfinite(result.metrics["val/bits_per_byte"]) and result.metrics["val/bits_per_byte"] > 0
    model = from_pretrained(result.model_dir)
    assert type(model).__name__ == "PerceiverAR" and model.config.num_latents == 16


def test_bf16_mixed_fit_follows_the_float32_fit(tmp_path) -> None:
    """The same 6 steps under bf16 autocast and in float32. bf16 keeps 8 bits of mantissa (a relative rounding of
    up to 2⁻⁹ per operation); the loss averages thousands of positions, whose rounding errors mostly cancel, so
    the tolerance is 0.5 % (measured: 5e-5), while 6 steps move the loss by about 9 %."""
    config = _config(tmp_path, 6)
    runs = {precision: train(load_train_config(None, config, [f"output_dir={tmp_path / precision}",
                                                              f"trainer.precision={precision}"]))
            for precision in ("32-true", "bf16-mixed")}
    full, half = runs["32-true"].metrics, runs["bf16-mixed"].metrics
    assert half["val/bits_per_byte"] == pytest.approx(full["val/bits_per_byte"], rel=5e-3)
    assert half["train/loss"] == pytest.approx(full["train/loss"], rel=5e-3)
    assert half["train/loss"] != full["train/loss"]  # autocast did compute in bf16
    assert full["val/bits_per_byte"] < 8.0  # it learned something in 6 steps (uniform over bytes: 8 bits)
    # The saved weights stay float32 under mixed precision.
    assert {t.dtype for t in load_file(runs["bf16-mixed"].model_dir / "model.safetensors").values()} == \
        {torch.float32}


def test_activation_checkpointing_gives_the_same_gradients_on_real_windows(tmp_path) -> None:
    config = _config(tmp_path, 1)
    data = _data(tmp_path, PerceiverARConfig(d_model=32, num_latents=16, num_self_attention_layers=2,
                                                      num_heads=2, num_cross_attention_heads=2, widening_factor=2),
                 path="data", sequence_length=64)
    batch = data.collate([data.train_set[i] for i in range(4)])  # type: ignore[index]
    grads = []
    for checkpointing in ("false", "true"):
        L.seed_everything(0, verbose=False)
        model = build_model(load_train_config(None, config, [f"model.activation_checkpointing={checkpointing}"]))
        assert model.gradient_checkpointing == (checkpointing == "true")
        model.train()
        loss = model(batch["input_ids"], labels=batch["labels"]).loss
        loss.backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) == len(list(model.parameters()))
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=0, atol=1e-6, msg=name)


# --- several processes ------------------------------------------------------------------------------------------

DISTRIBUTED_STEPS = ["trainer.max_steps=8", "optim.warmup_steps=20", "trainer.val_check_interval=8"]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """8 SGD steps of batch 16 in one process, on the tiny causal-lm config."""
    tmp = tmp_path_factory.mktemp("causal-single")
    config = _config(tmp, 8)
    run = train_cli(tmp, "run", "data.batch_size=16", *DISTRIBUTED_STEPS, *SGD, config=config)
    return config, load_file(run / "model" / "model.safetensors")


def _assert_same_training(config: Path, ours: dict[str, torch.Tensor], single: dict[str, torch.Tensor]) -> None:
    torch.testing.assert_close(ours, single, rtol=1e-4, atol=1e-5)
    L.seed_everything(0, verbose=False)  # the runs' seed: the same initial weights
    initial = build_model(load_train_config(None, config)).state_dict()
    moved = max(float((single[k] - initial[k]).abs().max()) for k in single)
    assert moved > 100 * float(max((ours[k] - single[k]).abs().max() for k in single))


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_end_with_the_weights_of_one_process_with_twice_the_batch(tmp_path, one_process,
                                                                                strategy) -> None:
    config, single = one_process
    run = train_cli(tmp_path, strategy, "data.batch_size=8", "trainer.devices=2", f"trainer.strategy={strategy}",
                    *DISTRIBUTED_STEPS, *SGD, config=config)
    _assert_same_training(config, load_file(run / "model" / "model.safetensors"), single)


@pytest.mark.slow
def test_two_process_fsdp_in_bf16_follows_one_float32_process(tmp_path, one_process) -> None:
    """Under bf16-mixed, FSDP gathers the weights in bf16 and keeps float32 slices: the run follows the float32
    one up to bf16 rounding (far closer than the distance training moved the weights), saved in float32."""
    config, single = one_process
    run = train_cli(tmp_path, "fsdp-bf16", "data.batch_size=8", "trainer.devices=2", "trainer.strategy=fsdp",
                    "trainer.precision=bf16-mixed", *DISTRIBUTED_STEPS, *SGD, config=config)
    weights = load_file(run / "model" / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float32}
    L.seed_everything(0, verbose=False)
    initial = build_model(load_train_config(None, config)).state_dict()
    moved = max(float((single[k] - initial[k]).abs().max()) for k in single)
    apart = max(float((weights[k] - single[k]).abs().max()) for k in single)
    assert 0 < apart < moved / 10, (apart, moved)
