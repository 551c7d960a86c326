"""Which model each tab of the playground runs.

By default every tab runs the model shipped for its task (:data:`SHIPPED`), and the page says which one it is and
what its card measured, so that a weak result (the small autoencoder's blurred reconstruction) is read for what it
is. ``--model-dir`` replaces a tab's model with any checkpoint (our directory, a Transformers folder or a hub id);
the checkpoint's own task decides which tab it serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..checkpoints import from_pretrained
from ..config import ConfigError
from ..devices import resolve_device, resolve_dtype
from ..tasks.base import TaskModel
from ..tasks.registry import get_task

#: The tabs, in page order: the task each serves (the registry's name).
TAB_TASKS: dict[str, str] = {
    "fill-mask": "masked-lm",
    "image-classification": "image-classification",
    "optical-flow": "optical-flow",
    "autoencoding": "multimodal-autoencoding",
    "point-cloud": "point-cloud-classification",
}


@dataclass(frozen=True)
class ShippedModel:
    """A model shipped in ``resources/models/`` and the headline figure of its card, as the page states it."""

    name: str
    figure: str


#: Task → the model its tab runs by default. The figures are the cards' (tests/app/test_tabs.py checks each
#: against the ``card.yaml`` it comes from); a card that changes its figure must change it here too.
SHIPPED: dict[str, ShippedModel] = {
    "masked-lm": ShippedModel("byte-mlm", "63.1 % masked-byte accuracy on held-out Jargon File and WordNet text"),
    "image-classification": ShippedModel("fashion-mnist-classifier", "91.23 % test accuracy on Fashion-MNIST"),
    "optical-flow": ShippedModel(
        "optical-flow-small", "end-point error 1.64 px on the Middlebury motorcycle pair at 93×62 (zero flow "
        "4.30 px; tuned OpenCV DIS 0.54 px)"),
    "multimodal-autoencoding": ShippedModel(
        "multimodal-autoencoder-small", "a weak model trained 600 CPU steps on this clip: 15.26 dB video PSNR "
        "on held-out windows, only 0.5 dB above a flat frame of each window's mean colour: expect little more "
        "than the colours, and audio no better than silence"),
    "point-cloud-classification": ShippedModel(
        "point-cloud-classifier-small", "90.83 % test accuracy on generated shapes (chance 12.5 %)"),
}


@dataclass(frozen=True)
class TabModel:
    """The model a tab runs: ``source`` is what it was loaded from; ``shipped`` is set for a shipped default."""

    model: TaskModel[Any]
    source: str
    shipped: ShippedModel | None = None

    def describe(self) -> str:
        """One line for the page: which model, what its card measured (for a shipped one), its size."""
        size = sum(p.numel() for p in self.model.parameters())
        if self.shipped is not None:
            return (f"Default model `{self.shipped.name}` (shipped): {self.shipped.figure}. {size:,} parameters, "
                    f"on {self.model.device}; replace it with `--model-dir`.")
        return f"Model `{self.source}` (from `--model-dir`): {size:,} parameters, on {self.model.device}."


def choose_models(model_dirs: Sequence[str] = (), device: str | None = "auto",
                  dtype: str | None = "float32") -> dict[str, TabModel]:
    """Load the model of every tab (keyed by the tab names of :data:`TAB_TASKS`).

    Each of ``model_dirs`` is loaded once and serves the tab of its own task; two checkpoints of one task, or one
    of a task without a tab (text classification, Perceiver AR), are refused in one line before serving starts.
    """
    target_device, target_dtype = resolve_device(device), resolve_dtype(dtype) or torch.float32
    by_task: dict[str, TabModel] = {}
    for source in model_dirs:
        model = from_pretrained(source, device=target_device, dtype=target_dtype)
        task = get_task(model.task).name
        if task not in TAB_TASKS.values():
            raise ConfigError(f"--model-dir {source} holds a {task} model, which has no tab; the tabs serve "
                              f"{', '.join(TAB_TASKS.values())}")
        if task in by_task:
            raise ConfigError(f"--model-dir {source} and {by_task[task].source} are both {task} models; "
                              "give one per task")
        by_task[task] = TabModel(model, str(source))
    chosen: dict[str, TabModel] = {}
    for tab, task in TAB_TASKS.items():
        if task in by_task:
            chosen[tab] = by_task[task]
        else:
            shipped = SHIPPED[task]
            chosen[tab] = TabModel(from_pretrained(shipped.name, device=target_device, dtype=target_dtype),
                                   shipped.name, shipped)
    return chosen


__all__ = ["SHIPPED", "TAB_TASKS", "ShippedModel", "TabModel", "choose_models"]
