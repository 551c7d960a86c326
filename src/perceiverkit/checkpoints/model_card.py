"""Model cards: the ``README.md`` of a saved model, with the Hugging Face Hub's YAML metadata on top.

The metadata (``library_name``, ``pipeline_tag``, ``tags``, ``datasets``, ``metrics`` and the ``model-index``
results) is generated, never typed by hand: from the model (its task's registry entry, its parameter count,
its label names), from its training record (the ``config.yaml`` and ``metrics.json`` a training run writes next
to ``model/``) and from optional :class:`CardFacts`, the prose a person adds (data, recipe, limits, measured
results). The text repeats every metric of the metadata from the same values, so the two cannot disagree.

``TaskModel.push_to_hub`` writes its card here, and so do the shipped models (``resources/models/<name>/``),
each from the ``card.yaml`` beside it::

    python -m perceiverkit.checkpoints.model_card --shipped          # rewrite the shipped models' README.md
    python -m perceiverkit.checkpoints.model_card --shipped --check  # fail if one is not what they generate
    python -m perceiverkit.checkpoints.model_card MODEL_DIR [--record RUN_DIR] [--facts card.yaml]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError, config_to_dict
from ..tasks.base import TaskModel
from ..tasks.registry import get_task
from .files import SAFETENSORS

CARD_FILE = "README.md"
FACTS_FILE = "card.yaml"
LIBRARY_NAME = "perceiverkit"
BASE_TAGS = ("perceiver-io", "perceiverkit")
_METRIC_SIGNIFICANT_DIGITS = 4  # a training record's metric is rounded once, for the metadata and the text alike


@dataclass(frozen=True)
class CardMetric:
    """One measured result: a ``model-index`` entry in the metadata and a phrase in the card's text."""

    name: str
    """What was measured, as a reader says it (``"masked-byte accuracy"``)."""
    type: str
    """The metric's id for the Hub (``"accuracy"``, ``"loss"``, ``"epe"``)."""
    value: float
    dataset: str
    """The evaluation data in words (``"the 10,000 test images"``)."""
    dataset_type: str
    """The evaluation data's id (a Hub dataset id where there is one)."""
    unit: str = ""
    """How ``value`` reads (``"%"``, ``"px"``); empty for a plain number."""
    split: str | None = None
    detail: str = ""
    """A remark printed in parentheses after the result (how many batches, which command)."""

    def text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"**{_number(self.value)}{unit}** {self.name} on {self.dataset}{detail}"


@dataclass(frozen=True)
class CardFacts:
    """What a person adds to a card: the title, prose rows of its table, measured results, and closing notes."""

    title: str = ""
    rows: Mapping[str, str] = field(default_factory=dict)
    """Table rows in order (``task``, ``architecture``, ``data``, ``recipe``, ``command``); ``task`` replaces the
    generated one; ``size``, ``labels``, ``training`` and ``metric`` are generated and cannot be given."""
    metrics: tuple[CardMetric, ...] = ()
    """Results to report; when empty, the training record's validation and test metrics are reported."""
    metric_note: str = ""
    """Prose after the results in the metric row (the learning curve, baselines)."""
    datasets: tuple[str, ...] = ()
    """Training data ids; when empty, the training record's data source."""
    license: str | None = None
    language: str | None = None
    notes: str = ""
    """Markdown after the table (examples, limits)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "card facts") -> CardFacts:
        unknown = sorted(set(data) - {f for f in cls.__dataclass_fields__})
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {unknown}; expected {sorted(cls.__dataclass_fields__)}")
        rows = dict(data.get("rows") or {})
        generated = sorted(set(rows) & set(_GENERATED_ROWS))
        if generated:
            raise ConfigError(f"{where}: rows {generated} are generated from the model and its record; remove them")
        try:
            metrics = tuple(CardMetric(**entry) for entry in data.get("metrics") or ())
        except TypeError as error:
            raise ConfigError(f"{where}: metrics: {error}") from None
        return cls(title=data.get("title", ""), rows=rows, metrics=metrics, metric_note=data.get("metric_note", ""),
                   datasets=tuple(data.get("datasets") or ()), license=data.get("license"),
                   language=data.get("language"), notes=str(data.get("notes", "")).strip())

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> CardFacts:
        """The facts in a YAML file (a ``card.yaml``)."""
        import yaml  # a dependency of huggingface_hub

        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of card fields")
        return cls.from_dict(data, where=str(path))


@dataclass(frozen=True)
class TrainingRecord:
    """What a training run (``perceiverkit train``) left next to its model: its config and final metrics."""

    config: Mapping[str, Any]
    metrics: Mapping[str, float]

    @classmethod
    def read(cls, directory: str | os.PathLike[str]) -> TrainingRecord:
        """The record of the run in ``directory`` (the run's output folder, or the ``model/`` folder inside it);
        a missing ``config.yaml`` or ``metrics.json`` leaves that part empty."""
        import yaml

        path = Path(directory)
        if not (path / "metrics.json").is_file() and not (path / "config.yaml").is_file():
            path = path.parent  # given the model folder: the record sits beside it
        if not (path / "metrics.json").is_file() and not (path / "config.yaml").is_file():
            raise ConfigError(f"{directory} holds no training record (config.yaml or metrics.json of a run)")
        config = yaml.safe_load((path / "config.yaml").read_text()) if (path / "config.yaml").is_file() else {}
        metrics = json.loads((path / "metrics.json").read_text()) if (path / "metrics.json").is_file() else {}
        return cls(config=config or {}, metrics={str(k): float(v) for k, v in metrics.items()})

    def datasets(self) -> tuple[str, ...]:
        source = (self.config.get("data") or {}).get("source")
        return (str(source),) if source else ()

    def card_metrics(self) -> tuple[CardMetric, ...]:
        """The run's validation and test metrics (``val/accuracy`` → accuracy on the validation split)."""
        source = self.datasets()[0] if self.datasets() else "the training data source"
        splits = {"val": "validation", "test": "test"}
        results = []
        for key, value in sorted(self.metrics.items()):
            stage, _, name = key.partition("/")
            if stage not in splits or not name or not math.isfinite(value):
                continue
            results.append(CardMetric(
                name=name.replace("_", " "), type=name.rsplit("_", 1)[-1],
                value=float(f"{value:.{_METRIC_SIGNIFICANT_DIGITS}g}"),
                dataset=f"the {splits[stage]} split of {source}", dataset_type=source, split=splits[stage]))
        return tuple(results)

    def summary(self) -> str:
        """The run's settings in one line: data, optimiser, length, seed (what reproduces it with its config)."""
        parts = []
        data = self.config.get("data") or {}
        if data.get("source"):
            batch = f" (batch {data['batch_size']})" if data.get("batch_size") else ""
            parts.append(f"data source `{data['source']}`{batch}")
        optim = self.config.get("optim") or {}
        if optim:
            parts.append(", ".join(f"{key} {value}" for key, value in optim.items() if value is not None))
        trainer = self.config.get("trainer") or {}
        steps, epochs = trainer.get("max_steps", -1), trainer.get("max_epochs", -1)
        if steps is not None and steps > 0:
            parts.append(f"{steps:,} steps")
        elif epochs is not None and epochs > 0:
            parts.append(f"{epochs} epochs")
        if self.config.get("seed") is not None:
            parts.append(f"seed {self.config['seed']}")
        return "; ".join(parts)


_GENERATED_ROWS = ("size", "labels", "training", "metric")
# The metadata's keys in reading order: what the model is first, then what it was trained and measured on.
_METADATA_ORDER = ("license", "language", "library_name", "pipeline_tag", "tags", "datasets", "metrics",
                   "model-index")


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:,.0f}"


def card_metadata(model: TaskModel[Any], name: str, facts: CardFacts | None = None,
                  record: TrainingRecord | None = None) -> dict[str, Any]:
    """The card's YAML metadata as a dict, in the Hub's model-card format."""
    from huggingface_hub import EvalResult, ModelCardData

    facts = facts or CardFacts()
    spec = get_task(model.task)
    metrics = facts.metrics or (record.card_metrics() if record else ())
    datasets = facts.datasets or (record.datasets() if record else ())
    tags = list(dict.fromkeys([*BASE_TAGS, *([spec.name] if spec.name != spec.pipeline_tag else [])]))
    results = [EvalResult(task_type=spec.pipeline_tag or spec.name, dataset_type=m.dataset_type,
                          dataset_name=m.dataset, dataset_split=m.split, metric_type=m.type, metric_value=m.value,
                          metric_name=f"{m.name} in {m.unit}" if m.unit else m.name)
               for m in metrics]
    data = ModelCardData(library_name=LIBRARY_NAME, pipeline_tag=spec.pipeline_tag, tags=tags,
                         datasets=list(datasets) or None, metrics=list(dict.fromkeys(m.type for m in metrics)) or None,
                         license=facts.license, language=facts.language, model_name=name if results else None,
                         eval_results=results or None)
    generated = data.to_dict()
    first = [key for key in _METADATA_ORDER if key in generated]
    return {key: generated[key] for key in [*first, *(key for key in generated if key not in first)]}


def render_model_card(model: TaskModel[Any], name: str, *, facts: CardFacts | None = None,
                      record: TrainingRecord | None = None, weights: str | os.PathLike[str] | None = None,
                      source: str | None = None) -> str:
    """The whole ``README.md``: YAML metadata, a title, a table of facts, notes, and how to load the model.

    ``name`` titles the card and the ``model-index``; ``weights`` (the saved ``model.safetensors``) gives its size;
    ``source`` is what ``from_pretrained`` is shown loading (the hub id; default ``name``).
    """
    import yaml

    facts = facts or CardFacts()
    spec = get_task(model.task)
    metadata = card_metadata(model, name, facts, record)
    front = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True, width=1000).strip()
    rows: dict[str, str] = {"task": f"{spec.name} (`perceiverkit.{type(model).__name__}`)"}
    rows.update({"task": facts.rows["task"]} if "task" in facts.rows else {})
    size = f"{model.num_parameters():,} parameters"
    if weights is not None and Path(weights).is_file():
        size += f", {Path(weights).stat().st_size / 1e6:.1f} MB (`{SAFETENSORS}`)"
    rows["size"] = size
    labels = config_to_dict(model.config).get("labels")
    if labels:
        rows["labels"] = ", ".join(f"`{label}`" for label in labels)
    rows.update({key: text for key, text in facts.rows.items() if key != "task"})
    if record is not None and record.summary():
        rows["training"] = record.summary()
    metrics = facts.metrics or (record.card_metrics() if record else ())
    if metrics or facts.metric_note:
        rows["metric"] = "; ".join([*(m.text() for m in metrics), *([facts.metric_note] if facts.metric_note else [])])
    title = f"# {name} — {facts.title}" if facts.title else f"# {name}"
    table = ["| | |", "|---|---|", *(f"| {key} | {_cell(text)} |" for key, text in rows.items())]
    usage = ["## Use", "", "```python", "import perceiverkit", "",
             f'model = perceiverkit.from_pretrained("{source or name}")', "```"]
    parts = [f"---\n{front}\n---", title, "\n".join(table), *([facts.notes] if facts.notes else []), "\n".join(usage)]
    return "\n\n".join(parts) + "\n"


def _cell(text: str) -> str:
    """A table cell: Markdown tables hold one line per row."""
    if "\n" in text.strip():
        raise ConfigError(f"a card table row must be one line, got {text!r}")
    return text.strip()


def write_model_card(directory: str | os.PathLike[str], model: TaskModel[Any] | None = None, *,
                     name: str | None = None, facts: CardFacts | None = None, record: TrainingRecord | None = None,
                     source: str | None = None) -> Path:
    """Write ``README.md`` into the saved model folder ``directory`` (the model is loaded from it if not given);
    returns the card's path."""
    path = Path(directory)
    if model is None:
        model = TaskModel.from_pretrained(path)
    card = render_model_card(model, name or path.name, facts=facts, record=record, weights=path / SAFETENSORS,
                             source=source)
    (path / CARD_FILE).write_text(card, encoding="utf-8")
    return path / CARD_FILE


def shipped_card(name: str) -> tuple[Path, str]:
    """The shipped model ``name``'s card path and the card its ``card.yaml`` generates."""
    from ..resources import packaged_model

    folder = packaged_model(name)
    if folder is None:
        raise ConfigError(f"there is no shipped model {name!r}")
    if not (folder / FACTS_FILE).is_file():
        raise ConfigError(f"{folder / FACTS_FILE} is missing: the shipped models' card facts live in the "
                          "repository (they are not installed with the package)")
    card = render_model_card(TaskModel.from_pretrained(folder), name, facts=CardFacts.read(folder / FACTS_FILE),
                             weights=folder / SAFETENSORS)
    return folder / CARD_FILE, card


def main(argv: Sequence[str] | None = None) -> int:
    from ..resources import packaged_model_names

    parser = argparse.ArgumentParser(prog="python -m perceiverkit.checkpoints.model_card",
                                     description="Generate model cards (README.md with Hub metadata).")
    parser.add_argument("model", nargs="?", help="a saved model folder to write README.md into")
    parser.add_argument("--record", help="the training run's output folder (config.yaml, metrics.json)")
    parser.add_argument("--facts", help="a card.yaml of prose facts")
    parser.add_argument("--name", help="the model's name in the card (default: the folder's name)")
    parser.add_argument("--shipped", action="store_true", help="regenerate every shipped model's card")
    parser.add_argument("--check", action="store_true", help="with --shipped: only report cards that differ")
    args = parser.parse_args(argv)
    if args.shipped == (args.model is not None):
        parser.error("pass a model folder or --shipped")
    if args.model is not None:
        record = TrainingRecord.read(args.record) if args.record else None
        facts = CardFacts.read(args.facts) if args.facts else None
        print(write_model_card(args.model, name=args.name, facts=facts, record=record))
        return 0
    stale = []
    for name in packaged_model_names():
        path, card = shipped_card(name)
        if path.is_file() and path.read_text(encoding="utf-8") == card:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(card, encoding="utf-8")
        print(f"{'differs' if args.check else 'wrote'}: {path}")
    return 1 if args.check and stale else 0


__all__ = ["CardFacts", "CardMetric", "TrainingRecord", "card_metadata", "render_model_card", "shipped_card",
           "write_model_card"]

if __name__ == "__main__":
    sys.exit(main())
