"""Building and running a training job from a :class:`TrainConfig`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from ..config import ConfigError, config_from_dict, config_to_dict
from ..memory_budget import activation_memory_budget
from ..tasks.base import TaskModel
from ..tasks.registry import get_preset, get_task
from .callbacks import RandomStateCheckpoint, SaveOnSigterm
from .checkpoint_io import AtomicCheckpointIO
from .config import TrainConfig, dump_train_config
from .datamodules import PerceiverDataModule
from .init_schemes import POSITION_INITS
from .modules import PerceiverModule
from .sharding import FSDP, FullyShardedStrategy, full_state_dict, is_sharded, unsharded_class

if TYPE_CHECKING:
    import lightning as L


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def transfer_weights(source: torch.nn.Module, target: torch.nn.Module) -> tuple[list[str], list[str]]:
    """Copy every tensor whose name and shape match (e.g. an MLM's encoder into a classifier); returns the
    copied names and the target's names left at their initialisation."""
    src = source.state_dict()
    copied, kept = [], []
    with torch.no_grad():
        for name, tensor in target.state_dict().items():
            if name in src and src[name].shape == tensor.shape:
                tensor.copy_(src[name])
                copied.append(name)
            else:
                kept.append(name)
    return copied, kept


def build_model(config: TrainConfig) -> TaskModel[Any]:
    """The task model of a training config: from a preset, a config dict, or a checkpoint to fine-tune."""
    task = get_task(config.task)
    spec = config.model
    if spec.preset:
        if spec.preset not in (preset.name for preset in task.presets):
            raise ConfigError(f"preset {spec.preset!r} is not a {task.name} preset")
        base = config_to_dict(get_preset(spec.preset).make_config())
    else:
        base = {}
    model_config = config_from_dict(task.config_class, _merge(base, spec.config), where="model.config")
    model = task.build(model_config)
    if spec.init_from:
        from ..checkpoints import from_pretrained

        copied, kept = transfer_weights(from_pretrained(spec.init_from), model)
        if not copied:
            raise ConfigError(f"no weights of {spec.init_from} fit the {task.name} model")
        print(f"initialised {len(copied)} tensors from {spec.init_from}; {len(kept)} keep their initialisation")
    if spec.position_init in POSITION_INITS:
        POSITION_INITS[spec.position_init](model)
    elif spec.position_init != "random":
        raise ConfigError(f"model.position_init must be one of {['random', *POSITION_INITS]}, "
                          f"got {spec.position_init!r}")
    if spec.activation_checkpointing:
        model.set_activation_checkpointing(True)
    if spec.half_precision_latents:
        model.set_half_precision_latents(True)
    return model


@dataclass
class TrainResult:
    """Where the trained model went, the final logged metrics, and whether SIGTERM cut the run short (then
    ``last.ckpt`` in ``checkpoint_dir`` holds the state to resume from and no final model is written).

    In a multi-process run every process returns one; ``is_global_zero`` marks the process that wrote the
    model (the others' training metrics are those of their own share of the batches)."""

    model_dir: Path
    metrics: dict[str, float]
    checkpoint_dir: Path
    interrupted: bool = False
    is_global_zero: bool = True


def build_datamodule(config: TrainConfig, model: TaskModel[Any]) -> PerceiverDataModule:
    """The data module of ``config.data.source``, one of the sources the model's task trains on."""
    source: type[PerceiverDataModule] = get_task(model.task).data_source_class(config.data.source)
    return source(config.data, model.config, config.seed)


def _unsharded(model: TaskModel[Any], weights: dict[str, torch.Tensor]) -> TaskModel[Any]:
    """``model`` itself, or for a sharded one a plain copy holding the gathered ``weights``."""
    if not is_sharded(model):
        return model
    plain = cast(TaskModel[Any], unsharded_class(model)(model.config))
    plain.load_state_dict(weights)
    return plain


def train(config: TrainConfig, callbacks: list[L.Callback] | None = None) -> TrainResult:
    """Train, write TensorBoard and CSV logs, checkpoints (``last.ckpt``) and the final model in our format."""
    import lightning as L
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    config.validate()
    L.seed_everything(config.seed, workers=True, verbose=False)
    model = build_model(config)
    data = build_datamodule(config, model)
    data.setup("fit")
    data.prepare_model(model)  # class names and input preprocessing, saved with the model
    t = config.trainer
    total = t.max_steps
    if total <= 0:
        if t.max_epochs <= 0:
            raise ConfigError("set trainer.max_steps or trainer.max_epochs")
        per_epoch = math.ceil(len(data.train_dataloader()) / t.accumulate_grad_batches)
        total = per_epoch * t.max_epochs
    module_cls: type[PerceiverModule] = get_task(model.task).lightning_module_class()
    module = module_cls(model, config.optim, total, **config.task_options)
    if config.model.compile:
        # Compiles the model in place: parameter names, and so checkpoints, stay those of the uncompiled model.
        model.compile(backend=config.model.compile_backend, fullgraph=config.model.compile_fullgraph)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(dump_train_config(config))
    checkpoint = ModelCheckpoint(dirpath=out / "checkpoints", save_last=True, save_top_k=0,
                                 every_n_train_steps=t.checkpoint_every_n_steps, save_on_train_epoch_end=True)
    last = out / "checkpoints" / "last.ckpt"
    resume = config.resume
    if resume == "auto":  # continue where a previous run in this folder stopped, or start afresh
        resume = str(last) if last.is_file() else None
    trainer = L.Trainer(
        max_steps=t.max_steps, max_epochs=t.max_epochs, precision=t.precision, gradient_clip_val=t.gradient_clip_val,
        accumulate_grad_batches=t.accumulate_grad_batches, accelerator=t.accelerator, devices=t.devices,
        num_nodes=t.num_nodes, strategy=FullyShardedStrategy() if t.strategy == FSDP else t.strategy,
        val_check_interval=t.val_check_interval,
        check_val_every_n_epoch=t.check_val_every_n_epoch, log_every_n_steps=t.log_every_n_steps,
        limit_val_batches=t.limit_val_batches, enable_progress_bar=t.enable_progress_bar,
        deterministic=t.deterministic, default_root_dir=out,
        use_distributed_sampler=False,  # EpochSeededSampler shares batches out itself, reproducibly
        logger=[CSVLogger(out, name="csv", version=""), TensorBoardLogger(out, name="tensorboard", version="")],
        callbacks=[checkpoint, LearningRateMonitor(logging_interval="step"),
                   RandomStateCheckpoint(), SaveOnSigterm(str(last)), *(callbacks or [])],
        plugins=[AtomicCheckpointIO()],
    )
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    try:
        # The model compiles at its first training step, inside fit: the budget must be in force then.
        with activation_memory_budget(config.model.compile_memory_budget):
            trainer.fit(module, datamodule=data, ckpt_path=resume)
    except SIGTERMException:
        return TrainResult(out / "model", {}, out / "checkpoints", interrupted=True,
                           is_global_zero=trainer.is_global_zero)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
    model_dir = out / "model"
    weights = full_state_dict(model)  # under FSDP a collective: every process contributes its slice
    if trainer.is_global_zero:
        final = _unsharded(model, weights)
        data.prepare_model(final)  # a sharded model's plain copy needs the data's preprocessing as well
        final.save_pretrained(model_dir)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return TrainResult(model_dir, metrics, out / "checkpoints", is_global_zero=trainer.is_global_zero)


__all__ = ["TrainResult", "build_datamodule", "build_model", "train", "transfer_weights"
]
