"""The model card of a finished training run: ``run_dir/model/README.md``, written by the model-card writer of
:mod:`perceiverkit.checkpoints.model_card` from what the run left beside its model.

The card says what the model was trained on (the data source and its options), how (the optimiser and trainer
settings), the command that trains it again, the final metrics (``metrics.json``, the validation and test ones in
the Hub metadata) and the learning curves, drawn from ``csv/metrics.csv`` into ``model/loss.png`` and
``model/metrics.png`` as ``perceiverkit plot`` draws them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..checkpoints.model_card import CardFacts, TrainingRecord, write_model_card
from ..checkpoints.native import CONFIG_FILE
from ..checkpoints.training_runs import MODEL_DIR
from ..config import ConfigError
from ..viz.curves import plot_run

#: The trainer settings a card names (the rest are how a machine ran it: devices, logging, progress bars).
RECIPE_TRAINER_KEYS = ("max_steps", "max_epochs", "precision", "gradient_clip_val", "accumulate_grad_batches",
                       "devices", "num_nodes", "strategy")


def _settings(values: Mapping[str, Any], keys: tuple[str, ...] | None = None) -> str:
    """``key value, key value`` in the given order (all keys when ``keys`` is None), as one table cell."""
    chosen = [key for key in (keys or tuple(values)) if key in values and values[key] is not None]
    return ", ".join(f"{key} {json.dumps(values[key]) if isinstance(values[key], (dict, list)) else values[key]}"
                     for key in chosen)


def run_card_facts(run_dir: Path, record: TrainingRecord, curves: Mapping[str, Path]) -> CardFacts:
    """The card's rows (data, recipe, command) and notes (every final metric, the curves) for the run."""
    config = record.config
    data = config.get("data") or {}
    rows: dict[str, str] = {}
    if data.get("source"):
        options = _settings(data.get("options") or {})
        rows["data"] = (f"data source `{data['source']}`" + (f" with options {options}" if options else "")
                        + (f", batch size {data['batch_size']}" if data.get("batch_size") else ""))
    optim, trainer = config.get("optim") or {}, config.get("trainer") or {}
    recipe = "; ".join(part for part in (_settings(optim), _settings(trainer, RECIPE_TRAINER_KEYS)) if part)
    if recipe:
        rows["recipe"] = recipe + (f"; seed {config['seed']}" if config.get("seed") is not None else "")
    rows["command"] = f"`perceiverkit fit --config {run_dir / 'config.yaml'}`"
    notes = []
    if record.metrics:
        table = ["| final metric | value |", "|---|---|",
                 *(f"| `{name}` | {value:.6g} |" for name, value in sorted(record.metrics.items()))]
        notes.append("## Final metrics\n\nAs logged at the end of training (`metrics.json`).\n\n" + "\n".join(table))
    if curves:
        pictures = "\n\n".join(f"![{name}]({path.name})" for name, path in curves.items())
        notes.append(f"## Curves\n\nFrom the run's `csv/metrics.csv`.\n\n{pictures}")
    # The record's metrics and data source go in as facts, not as the record itself, whose one-line summary row
    # would repeat the data and recipe rows above.
    return CardFacts(rows=rows, metrics=record.card_metrics(), datasets=record.datasets(), notes="\n\n".join(notes))


def write_run_card(run_dir: str | os.PathLike[str]) -> Path:
    """Write the model card of the finished run in ``run_dir`` (its ``output_dir``) into ``run_dir/model/``, with
    its curves beside it; returns the card's path."""
    run_dir = Path(run_dir)
    model_dir = run_dir / MODEL_DIR
    if not (model_dir / CONFIG_FILE).is_file():
        raise ConfigError(f"{run_dir} holds no finished model ({model_dir / CONFIG_FILE} is missing): a model card "
                          "is written for a run that has finished")
    record = TrainingRecord.read(run_dir)
    log = run_dir / "csv" / "metrics.csv"
    curves = plot_run(run_dir, model_dir) if log.is_file() else {}
    facts = run_card_facts(run_dir, record, curves)
    return write_model_card(model_dir, name=run_dir.name, facts=facts, source=str(run_dir))


__all__ = ["run_card_facts", "write_run_card"]
