"""Training every task with Lightning: configs, data modules, task modules and the run loop.

Importing this package needs the ``train`` extra (``pip install perceiverkit[train]``).
"""

from .config import DataSpec, ModelSpec, OptimConfig, TrainConfig, TrainerSpec, load_train_config
from .masking import MaskedBatch, mask_tokens
from .optim import Lamb, warmup_cosine
from .run import TrainResult, build_model, train, transfer_weights

__all__ = [
    "DataSpec",
    "Lamb",
    "MaskedBatch",
    "ModelSpec",
    "OptimConfig",
    "TrainConfig",
    "TrainResult",
    "TrainerSpec",
    "build_model",
    "load_train_config",
    "mask_tokens",
    "train",
    "transfer_weights",
    "warmup_cosine",
]
