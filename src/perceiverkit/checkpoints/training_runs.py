"""Models from training runs: a Lightning ``.ckpt`` file, or a run's output folder.

Lightning saves a module's weights (``state_dict``, under the module's ``model.`` prefix) but nothing that says
which model they belong to. perceiverkit's training modules therefore add a *model record* under one key,
:data:`RECORD_KEY`: the task name, the config dict (what ``perceiverkit.json`` holds) and the processor settings
(the settings ``perceiverkit.json`` keeps, e.g. a text model's tokenizer, and the small files ``save_pretrained``
writes beside the weights, e.g. an image model's ``preprocessor_config.json``). With it a ``.ckpt`` alone
rebuilds the model as ``model/`` would have held it.

A run's output folder (``output_dir``) resolves to its finished ``model/`` when there is one, else to its best
checkpoint (the one Lightning's ``ModelCheckpoint`` recorded as best), else to ``checkpoints/last.ckpt``; which
one was taken is logged.

This module reads checkpoints with ``torch.load(weights_only=True)`` and never imports Lightning or train/.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..config import ConfigError, config_from_dict, config_to_dict
from ..tasks.base import TaskModel
from ..tasks.registry import get_task
from .files import CheckpointNotFoundError
from .native import CONFIG_FILE, FORMAT_VERSION
from .transformers_format import HF_CONFIG_FILE

log = logging.getLogger(__name__)

#: The key of a Lightning checkpoint under which perceiverkit's training modules keep the model record.
RECORD_KEY = "perceiverkit"
#: The prefix of the task model's parameters in a training module's ``state_dict`` (``PerceiverModule.model``).
MODULE_PREFIX = "model."
CKPT_SUFFIX = ".ckpt"
MODEL_DIR = "model"
CHECKPOINT_DIR = "checkpoints"
LAST_CKPT = "last.ckpt"


def model_record(model: TaskModel[Any]) -> dict[str, Any]:
    """What rebuilds ``model`` from a checkpoint's weights: task, config and processor settings and files.

    Only plain values (dicts, lists, strings, numbers), so that the checkpoint stays loadable with
    ``weights_only=True``."""
    with tempfile.TemporaryDirectory(prefix="perceiverkit-record-") as folder:
        # The processor writes what save_pretrained would write beside the weights; keep those files' text.
        settings = model.save_processor(Path(folder))
        files = {path.name: path.read_text(encoding="utf-8") for path in sorted(Path(folder).iterdir())
                 if path.is_file()}
    return {"format_version": FORMAT_VERSION, "task": model.task, "config": config_to_dict(model.config),
            "processor": settings, "processor_files": files}


@dataclass(frozen=True)
class CheckpointContents:
    """A Lightning checkpoint's model record and the task model's weights (prefix removed)."""

    task: str
    config: Any
    state_dict: dict[str, Tensor]
    processor: dict[str, Any]
    processor_files: dict[str, str]

    def restore_processor(self, model: TaskModel[Any]) -> None:
        """Give ``model`` the processor it was trained with, through its own ``load_processor``."""
        with tempfile.TemporaryDirectory(prefix="perceiverkit-record-") as folder:
            for name, text in self.processor_files.items():
                if Path(name).name != name:  # a crafted record must not write outside the folder
                    raise ConfigError(f"processor file name {name!r} in a checkpoint is not a plain file name")
                (Path(folder) / name).write_text(text, encoding="utf-8")
            model.load_processor(Path(folder), self.processor)


def _load(path: Path, mmap: bool = False) -> dict[str, Any]:
    # weights_only=True refuses to build arbitrary objects, so a crafted checkpoint cannot run code while loading;
    # mmap=True reads tensors only when touched (for a look at the callbacks' state alone).
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as error:  # the unpickler raises many types; the message is what matters
        if mmap:  # files in torch's legacy (non-zip) format cannot be mapped: read them whole
            return _load(path)
        first = (str(error).strip().splitlines() or [""])[0][:200]
        raise CheckpointNotFoundError(f"cannot read {path} as a Lightning checkpoint with weights_only=True "
                                      f"({type(error).__name__}: {first})") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointNotFoundError(f"{path} does not hold a Lightning checkpoint (a mapping with state_dict)")
    return checkpoint


def read_lightning_checkpoint(path: str | os.PathLike[str]) -> CheckpointContents:
    """The model record and weights of a ``.ckpt`` written by perceiverkit training; a checkpoint without the
    record (another program's Lightning checkpoint) is refused in one line."""
    path = Path(path)
    checkpoint = _load(path, mmap=True)  # the optimiser's state, often twice the weights, is never read
    record = checkpoint.get(RECORD_KEY)
    if not isinstance(record, dict) or not {"task", "config"} <= set(record):
        raise CheckpointNotFoundError(
            f"{path} has no perceiverkit model record (checkpoint key {RECORD_KEY!r} with task, config and "
            f"processor settings), so the model it holds is unknown: load it with the program that trained it, or "
            f"copy its state_dict into a model you build (perceiverkit.create_model) yourself")
    if record.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise ConfigError(f"{path} was written by a newer perceiverkit (record format {record['format_version']})")
    weights = checkpoint.get("state_dict")
    if not isinstance(weights, dict):
        raise CheckpointNotFoundError(f"{path} holds a model record but no state_dict")
    spec = get_task(str(record["task"]))
    config = config_from_dict(spec.config_class, record["config"], where=f"{path}: {RECORD_KEY}.config")
    # Copies: the model must not keep the file mapped (the run may replace the checkpoint while it is in use).
    state = {name.removeprefix(MODULE_PREFIX): tensor.clone() for name, tensor in weights.items()
             if name.startswith(MODULE_PREFIX)}
    return CheckpointContents(spec.name, config, state, dict(record.get("processor") or {}),
                              {str(k): str(v) for k, v in (record.get("processor_files") or {}).items()})


def best_checkpoint(checkpoints: Path) -> Path | None:
    """The checkpoint a ``ModelCheckpoint`` with a monitored metric recorded as best in ``checkpoints`` (a run's
    ``checkpoints/`` folder), read from the most recently written checkpoint there (the first such callback whose
    best file is still there); None when none records one."""
    files = sorted(checkpoints.glob(f"*{CKPT_SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not files:
        return None
    callbacks = _load(files[0], mmap=True).get("callbacks") or {}
    for name, state in callbacks.items():  # in the trainer's order: the run's own callback before added ones
        if not str(name).startswith("ModelCheckpoint") or not isinstance(state, dict) or state.get("monitor") is None:
            continue  # without a monitored metric, Lightning's "best" is merely the latest
        best = state.get("best_model_path")
        if best:
            # The path was absolute where the run wrote it; the folder may since have moved: look beside it.
            found = checkpoints / Path(str(best)).name
            if found.is_file():
                return found
    return None


def is_run_directory(path: Path) -> bool:
    """Whether ``path`` is a training run's output folder (rather than a saved model folder)."""
    saved_model = (path / CONFIG_FILE).is_file() or (path / HF_CONFIG_FILE).is_file()
    return (path.is_dir() and not saved_model
            and ((path / MODEL_DIR / CONFIG_FILE).is_file() or (path / CHECKPOINT_DIR).is_dir()))


def resolve_run_directory(run: Path) -> Path:
    """The model of the run in ``run``: its finished ``model/``, else its best checkpoint, else ``last.ckpt``."""
    if (run / MODEL_DIR / CONFIG_FILE).is_file():
        log.info("%s: loading the finished model %s", run, run / MODEL_DIR)
        return run / MODEL_DIR
    checkpoints = run / CHECKPOINT_DIR
    best = best_checkpoint(checkpoints)
    if best is not None:
        log.warning("%s has no finished model/; loading its best checkpoint %s", run, best)
        return best
    if (checkpoints / LAST_CKPT).is_file():
        log.warning("%s has no finished model/ and no best checkpoint; loading %s", run, checkpoints / LAST_CKPT)
        return checkpoints / LAST_CKPT
    raise CheckpointNotFoundError(f"the training run {run} has neither a finished {MODEL_DIR}/ nor a checkpoint in "
                                  f"{checkpoints}; train it (or resume it) until it saves one")


__all__ = ["RECORD_KEY", "CheckpointContents", "best_checkpoint", "is_run_directory", "model_record",
           "read_lightning_checkpoint", "resolve_run_directory"]
