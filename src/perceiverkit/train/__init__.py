"""Training every task with Lightning: configs, data modules, task modules and the run loop.

The names below load on first use, so ``perceiverkit.train.config``, ``.masking`` and ``.optim`` (and the
benchmark, which uses :func:`~perceiverkit.train.optim.adamw`) work without Lightning; ``train``,
``build_model`` and the rest of the run loop need the ``train`` extra (``pip install perceiverkit[train]``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Public name → submodule that defines it.
_EXPORTS = {
    "DataSpec": "config", "ModelSpec": "config", "OptimConfig": "config", "TrainConfig": "config",
    "TrainerSpec": "config", "load_train_config": "config",
    "MaskedBatch": "masking", "mask_tokens": "masking",
    "Lamb": "optim", "adamw": "optim", "warmup_cosine": "optim",
    "TrainResult": "run", "build_model": "run", "train": "run", "transfer_weights": "run",
}

if TYPE_CHECKING:
    # `X as X` marks each name as re-exported (for ruff and mypy); at run time __getattr__ loads them.
    from .config import DataSpec as DataSpec
    from .config import ModelSpec as ModelSpec
    from .config import OptimConfig as OptimConfig
    from .config import TrainConfig as TrainConfig
    from .config import TrainerSpec as TrainerSpec
    from .config import load_train_config as load_train_config
    from .masking import MaskedBatch as MaskedBatch
    from .masking import mask_tokens as mask_tokens
    from .optim import Lamb as Lamb
    from .optim import adamw as adamw
    from .optim import warmup_cosine as warmup_cosine
    from .run import TrainResult as TrainResult
    from .run import build_model as build_model
    from .run import train as train
    from .run import transfer_weights as transfer_weights


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = sorted(_EXPORTS)
