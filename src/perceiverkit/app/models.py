"""Which model each tab of the playground runs.

By default a tab runs the model shipped for its task (``byte-mlm``, ``fashion-mnist-classifier``,
``optical-flow-small``). ``--model-dir`` replaces it with any checkpoint (our directory, a Transformers folder or a
hub id); the checkpoint's own task decides which tab it serves. Autoencoding and point clouds have no shipped
model: there, without ``--model-dir``, the tab runs a small *untrained* model of the packaged training config's
size, so that every control can be tried, and the page says in the tab and next to every result that the
weights are random. A trained model comes from ``perceiverkit train --config autoencoding`` (or
``point-clouds``) and is passed with ``--model-dir``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..checkpoints import from_pretrained
from ..config import ConfigError, EncoderConfig
from ..devices import resolve_device, resolve_dtype
from ..tasks.base import TaskModel
from ..tasks.multimodal import MultimodalAutoencoder, MultimodalAutoencoderConfig
from ..tasks.point_cloud import PointCloudClassifier, PointCloudClassifierConfig
from ..tasks.registry import get_task

#: The tabs, in page order: the task each serves (the registry's name) and the model it runs by default.
TAB_TASKS: dict[str, str] = {
    "fill-mask": "masked-lm",
    "image-classification": "image-classification",
    "optical-flow": "optical-flow",
    "autoencoding": "multimodal-autoencoding",
    "point-cloud": "point-cloud-classification",
}
SHIPPED: dict[str, str] = {
    "masked-lm": "byte-mlm",
    "image-classification": "fashion-mnist-classifier",
    "optical-flow": "optical-flow-small",
}
#: A note shown beside every result of an untrained stand-in.
UNTRAINED_NOTE = "untrained model (random weights): this result says nothing about Perceiver IO"


def _untrained_autoencoder() -> MultimodalAutoencoder:
    # The size of resources/configs/autoencoding.yaml: 4 frames of 32×32 and their audio, decoded in one go.
    return MultimodalAutoencoder(MultimodalAutoencoderConfig(
        num_frames=4, image_size=32, image_patch_size=4, image_num_bands=8, audio_samples_per_frame=1920,
        samples_per_patch=16, audio_num_bands=16, num_labels=8, label_query_channels=32, output_num_channels=64,
        encoder=EncoderConfig(num_latents=64, d_latents=128, num_self_attends_per_block=2,
                              num_self_attention_heads=4, num_cross_attention_heads=1, attention_dropout=0.0)))


def _untrained_point_cloud() -> PointCloudClassifier:
    # The size of resources/configs/point-clouds.yaml.
    return PointCloudClassifier(PointCloudClassifierConfig(
        num_labels=8, num_bands=8, max_resolution=16,
        encoder=EncoderConfig(num_latents=24, d_latents=64, num_self_attends_per_block=2,
                              num_self_attention_heads=4, num_cross_attention_heads=1, attention_dropout=0.0)))


UNTRAINED: dict[str, Callable[[], TaskModel[Any]]] = {
    "multimodal-autoencoding": _untrained_autoencoder, "point-cloud-classification": _untrained_point_cloud}


@dataclass(frozen=True)
class TabModel:
    """The model a tab runs: ``source`` is what it was loaded from (None for an untrained stand-in)."""

    model: TaskModel[Any]
    source: str | None

    @property
    def trained(self) -> bool:
        return self.source is not None

    def describe(self) -> str:
        """One line for the page: where the model comes from, and its size."""
        size = sum(p.numel() for p in self.model.parameters())
        if self.source is None:
            return f"**{UNTRAINED_NOTE}** — {size:,} parameters; pass a trained checkpoint with `--model-dir`"
        return f"model `{self.source}` — {size:,} parameters, on {self.model.device}"


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
        elif task in SHIPPED:
            chosen[tab] = TabModel(from_pretrained(SHIPPED[task], device=target_device, dtype=target_dtype),
                                   SHIPPED[task])
        else:
            torch.manual_seed(0)  # the same stand-in at every start, so that its (meaningless) results repeat
            chosen[tab] = TabModel(UNTRAINED[task]().to(device=target_device, dtype=target_dtype).eval(), None)
    return chosen


__all__ = ["SHIPPED", "TAB_TASKS", "UNTRAINED_NOTE", "TabModel", "choose_models"]
