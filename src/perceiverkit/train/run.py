"""The training life cycle of a :class:`TrainConfig`: :func:`fit` (alias :func:`train`), :func:`validate` and
:func:`test` on a run's checkpoints.

Everything that can be checked is checked before ``output_dir`` is touched: the config's values
(:func:`~perceiverkit.train.config.load_train_config`), the task, its data source and the model
(:func:`~perceiverkit.train.config.check_task_settings`), the data itself (the data module is built and set up),
the loggers, callbacks and Trainer settings, and whether ``output_dir`` already holds a finished run. A run that
then fails before writing its first checkpoint removes what it created (:func:`_run_directory`).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import torch

from ..config import ConfigError
from ..memory_budget import activation_memory_budget
from ..tasks.base import TaskModel
from ..tasks.registry import get_task
from .callbacks import RandomStateCheckpoint, SaveOnSigterm
from .checkpoint_io import AtomicCheckpointIO
from .config import (
    ComponentSpec,
    MonitorMode,
    TrainConfig,
    check_output_dir,
    check_task_settings,
    dump_train_config,
    model_config,
)
from .datamodules import PerceiverDataModule
from .evaluate import find_checkpoint
from .init_schemes import POSITION_INITS
from .modules import PerceiverModule
from .sharding import FSDP, FullyShardedStrategy, full_state_dict, is_sharded, unsharded_class

if TYPE_CHECKING:
    import lightning as L

#: What a run writes into ``output_dir``; ``overwrite`` removes exactly these (other files there are left alone).
RUN_ENTRIES: tuple[str, ...] = ("model", "checkpoints", "csv", "tensorboard", "metrics.json", "config.yaml")
#: The best checkpoints' file names: ``best-step120.ckpt`` (the metric's name holds a ``/``, so it stays out).
BEST_PREFIX = "best-step"


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
    model = task.build(model_config(config))
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
    ``best_checkpoint`` is the best kept checkpoint by the monitored metric (None when none was kept).

    In a multi-process run every process returns one; ``is_global_zero`` marks the process that wrote the
    model (the others' training metrics are those of their own share of the batches)."""

    model_dir: Path
    metrics: dict[str, float]
    checkpoint_dir: Path
    interrupted: bool = False
    is_global_zero: bool = True
    best_checkpoint: Path | None = None


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


# --- what the config chooses: the monitored metric, loggers, callbacks ------------------------------------------------

def _default_monitor(module_cls: type[PerceiverModule]) -> tuple[str, MonitorMode]:
    # Each task's Lightning module names its validation metric (accuracy max, loss and EPE min); val/loss is
    # logged by every module.
    return cast("tuple[str, MonitorMode]", getattr(module_cls, "monitor", ("val/loss", "min")))


def _mode_of(name: str, module_cls: type[PerceiverModule]) -> MonitorMode:
    default_name, default_mode = _default_monitor(module_cls)
    if name == default_name:
        return default_mode
    # A metric the task does not rank by default: scores that grow with quality are named so.
    return "max" if any(word in name for word in ("accuracy", "psnr", "f1")) else "min"


def monitored(config: TrainConfig, module_cls: type[PerceiverModule]) -> tuple[str, MonitorMode]:
    """The metric that ranks checkpoints and its better direction: ``trainer.monitor`` / ``monitor_mode``, else
    the task module's validation metric (``monitor`` of its Lightning module: accuracy max, loss and EPE min)."""
    name = config.trainer.monitor or _default_monitor(module_cls)[0]
    return name, config.trainer.monitor_mode or _mode_of(name, module_cls)


def _component(spec: ComponentSpec, base: type, where: str) -> Any:
    """An instance of ``spec.class_path`` (a subclass of ``base``) made with ``spec.init_args``; one line if the
    class cannot be found or refuses the arguments."""
    module_name, _, name = spec.class_path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except ImportError as error:
        raise ConfigError(f"{where}.class_path: cannot import {spec.class_path!r} ({error}); is it installed?") \
            from None
    except AttributeError:
        raise ConfigError(f"{where}.class_path: module {module_name!r} has no {name!r}") from None
    if not (isinstance(found, type) and issubclass(found, base)):
        raise ConfigError(f"{where}.class_path: {spec.class_path!r} is not a {base.__module__}.{base.__name__}")
    try:
        inspect.signature(found).bind(**spec.init_args)
    except TypeError as error:
        raise ConfigError(f"{where}.init_args do not fit {spec.class_path}: {error}") from None
    try:
        return found(**spec.init_args)
    except ImportError as error:  # e.g. MLFlowLogger without mlflow installed
        raise ConfigError(f"{where}: {spec.class_path} needs a package that is not installed "
                          f"({' '.join(str(error).split())})") from None
    except (ValueError, TypeError, OSError) as error:
        raise ConfigError(f"{where}: {spec.class_path}(**init_args) refused its arguments: "
                          f"{' '.join(str(error).split())}") from None


def _csv_logger(out: Path, resumed_step: int | None) -> Any:
    """Lightning's CSVLogger writing ``out/csv/metrics.csv``. Lightning deletes a metrics.csv it finds there, so a
    resumed run (``resumed_step``: its checkpoint's ``global_step``) would lose the curve of the steps before
    its checkpoint (and the model card's curves with it): the rows logged before that step are kept instead,
    those logged after it (by a run killed after its last checkpoint) dropped, as the resumed run logs them
    again."""
    import csv

    from lightning.fabric.loggers.logger import rank_zero_experiment
    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.loggers.csv_logs import ExperimentWriter

    if resumed_step is None:
        return CSVLogger(out, name="csv", version="")
    keep_before: int = resumed_step

    class ResumedWriter(ExperimentWriter):
        def _check_log_dir_exists(self) -> None:
            path = Path(self.metrics_file_path)
            if not path.is_file():
                return
            with path.open(newline="") as f:
                reader = csv.DictReader(f)
                rows = [row for row in reader if int(float(row.get("step") or 0)) < keep_before]
                fields = list(reader.fieldnames or [])
            with path.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=fields)
                writer.writeheader()
                writer.writerows(rows)
            self.metrics_keys = fields  # new rows append under this header (rewritten if new metrics come)

    class ResumedCSVLogger(CSVLogger):
        @property
        @rank_zero_experiment
        def experiment(self) -> Any:  # Any: Lightning's own annotation names its private writer class
            if self._experiment is None:
                self._fs.makedirs(self.root_dir, exist_ok=True)
                self._experiment = ResumedWriter(log_dir=self.log_dir)
            return self._experiment

    return ResumedCSVLogger(out, name="csv", version="")


def _global_step(checkpoint: str) -> int | None:
    """The ``global_step`` of a Lightning checkpoint, the step a resumed run continues from (mapped, not read
    whole); None when the file cannot be read so (then Lightning's own loading answers for it)."""
    import pickle

    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # a legacy (non-zip) file cannot be mapped
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except (RuntimeError, pickle.UnpicklingError):
            return None
    except pickle.UnpicklingError:
        return None
    step = state.get("global_step") if isinstance(state, dict) else None
    return step if isinstance(step, int) else None


def _loggers(config: TrainConfig, out: Path, resumed_step: int | None = None) -> list[Any]:
    from lightning.pytorch.loggers import Logger, TensorBoardLogger

    made: list[Any] = []
    for i, logger in enumerate(config.loggers):
        if logger == "csv":
            made.append(_csv_logger(out, resumed_step))
        elif logger == "tensorboard":
            made.append(TensorBoardLogger(out, name="tensorboard", version=""))
        elif isinstance(logger, ComponentSpec):
            made.append(_component(logger, Logger, f"loggers[{i}]"))
        else:  # TrainConfig.validate refused it already; kept for library callers that skipped validation
            raise ConfigError(f"loggers[{i}]: unknown logger {logger!r}")
    return made


def _checkpoint_callbacks(config: TrainConfig, out: Path, module_cls: type[PerceiverModule]) -> list[Any]:
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    t = config.trainer
    monitor, mode = monitored(config, module_cls)
    # last.ckpt, for resume: written on its own schedule (epoch ends, or every n steps) whatever validation does.
    last = ModelCheckpoint(dirpath=out / "checkpoints", save_last=True, save_top_k=0,
                           every_n_train_steps=t.checkpoint_every_n_steps, save_on_train_epoch_end=True)
    made: list[Any] = [last]
    if t.save_top_k != 0:
        # The best k, judged after each validation (never at a training step, where the metric is stale).
        made.append(ModelCheckpoint(dirpath=out / "checkpoints", filename=BEST_PREFIX + "{step}", monitor=monitor,
                                    mode=mode, save_top_k=t.save_top_k, auto_insert_metric_name=False,
                                    save_on_train_epoch_end=False))
    if t.early_stopping is not None:
        stop = t.early_stopping
        name = stop.monitor or monitor
        stop_mode = stop.mode or (mode if name == monitor else _mode_of(name, module_cls))
        made.append(EarlyStopping(monitor=name, mode=stop_mode, patience=stop.patience, min_delta=stop.min_delta,
                                  check_on_train_epoch_end=False))
    return made


def _check_task_options(config: TrainConfig, module_cls: type[PerceiverModule]) -> None:
    accepted = [name for name in inspect.signature(module_cls.__init__).parameters
                if name not in ("self", "model", "optim", "total_steps")]
    unknown = sorted(set(config.task_options) - set(accepted))
    if unknown:
        expected = f"expected some of {accepted}" if accepted else "it takes none"
        raise ConfigError(f"task_options: {unknown} are not options of the {config.task} task; {expected}")


def _prepare(config: TrainConfig) -> tuple[TaskModel[Any], PerceiverDataModule, type[PerceiverModule]]:
    """Check the config against the task, then build the model and the data module and set the data up (reading
    and checking the data): the part of every command that needs no output folder."""
    check_task_settings(config)
    import lightning as L

    L.seed_everything(config.seed, workers=True, verbose=False)
    model = build_model(config)
    data = build_datamodule(config, model)
    data.setup("fit")
    data.prepare_model(model)  # class names and input preprocessing, saved with the model
    module_cls: type[PerceiverModule] = get_task(model.task).lightning_module_class()
    _check_task_options(config, module_cls)
    return model, data, module_cls


def _first_example(batch: Any) -> Any:
    if torch.is_tensor(batch):
        return batch[:1]
    if isinstance(batch, dict):
        return {key: _first_example(value) for key, value in batch.items()}
    return batch


def check_one_example(module: PerceiverModule, data: PerceiverDataModule) -> None:
    """Run the module's validation computation on one validation example, so that data that does not fit the
    model (channels, sizes, a label beyond num_labels) is a one-line :class:`ConfigError` before ``output_dir``
    is created instead of a traceback from the first training step. The random states are left as they were:
    runs stay identical to runs without the check."""
    import random

    import numpy as np

    python_state, numpy_state = random.getstate(), np.random.get_state()
    was_training = module.training
    try:
        # The loader draws its base seed from torch's generator: inside fork_rng as well.
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            batch = next(iter(data.val_dataloader()), None)
            if batch is not None:  # no validation data: nothing to try
                module.eval()
                module.compute(_first_example(batch), "val")
    except ConfigError:  # a data option the batch reads (e.g. mask_probability): its own line, not "does not fit"
        raise
    except (ValueError, RuntimeError, IndexError) as error:
        raise ConfigError(f"the data does not fit the model ({' '.join(str(error).split())[:300]}); set "
                          "model.config to match the data source (e.g. image.in_channels, num_labels) or change "
                          "data.options") from None
    finally:
        module.train(was_training)
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def check_training_batches(data: PerceiverDataModule) -> None:
    """Refuse training data smaller than one batch: a shuffled loader keeps full batches only, so it yields none,
    Lightning then runs no training step at all, and the run would write its untrained model as a finished one
    (with empty metrics and exit status 0)."""
    if len(data.train_dataloader()) == 0:
        size = len(data.train_set)  # type: ignore[arg-type]
        raise ConfigError(f"the training data has {size} example{'s' if size != 1 else ''}, fewer than one batch "
                          f"(data.batch_size {data.spec.batch_size}), so no training step would run; set "
                          f"data.batch_size to at most {size}, or give more training data")


def _trainer(**settings: Any) -> L.Trainer:
    """A Lightning Trainer; a setting it refuses (an accelerator this machine lacks, an unknown strategy) is a
    one-line :class:`ConfigError` rather than a traceback."""
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        return L.Trainer(**settings)
    except (MisconfigurationException, ValueError, RuntimeError) as error:
        raise ConfigError(f"trainer: {' '.join(str(error).split())}") from None


# --- the run directory ----------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _run_directory(out: Path, overwrite: bool) -> Iterator[None]:
    """Create ``out`` for a run; if the body fails before a checkpoint was written, remove what this run created
    (a failed start leaves no half-written run behind; a run that saved a checkpoint is kept, to be resumed)."""
    if overwrite:
        for name in RUN_ENTRIES:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    existed = out.exists()
    before = set(out.iterdir()) if existed else set()
    checkpoints = out / "checkpoints"
    old_checkpoints = set(checkpoints.iterdir()) if checkpoints.is_dir() else set()
    out.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        written = set(checkpoints.iterdir()) - old_checkpoints if checkpoints.is_dir() else set()
        if not written:
            created = set(out.iterdir()) - before if out.is_dir() else set()
            for path in created:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            if not existed and out.is_dir() and not any(out.iterdir()):
                out.rmdir()
        raise


def _translate_monitor_errors(error: BaseException, task: str) -> ConfigError | None:
    """Lightning learns only at the first validation that a monitored name is never logged (ModelCheckpoint and
    EarlyStopping each say so in their own words): one line naming the setting and the metrics there are."""
    import re

    text = str(error)
    found = re.search(r"ModelCheckpoint\(monitor='([^']*)'\)", text) or re.search(r"conditioned on metric `([^`]*)`",
                                                                                 text)
    if found is None:
        return None
    # Whole names only: removing the monitored name from the text would also cut it out of a longer one
    # (val/acc out of val/accuracy).
    logged = [name for name in dict.fromkeys(re.findall(r"val/[\w/]+", text)) if name != found.group(1)]
    return ConfigError(f"trainer.monitor (or trainer.early_stopping.monitor): {found.group(1)!r} is not a metric the "
                       f"{task} task logs; its validation metrics are {logged}")


# --- the life cycle -------------------------------------------------------------------------------------------------

def fit(config: TrainConfig, callbacks: list[L.Callback] | None = None) -> TrainResult:
    """Train: write ``config.yaml``, TensorBoard and CSV logs (or the configured loggers), checkpoints (the best
    ``trainer.save_top_k`` by the monitored metric, and ``last.ckpt``) and the final model in our format."""
    config.validate()
    check_output_dir(config)
    model, data, module_cls = _prepare(config)
    from lightning.pytorch.callbacks import Callback, LearningRateMonitor
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    t = config.trainer
    check_training_batches(data)
    total = t.max_steps
    if total <= 0:
        per_epoch = math.ceil(len(data.train_dataloader()) / t.accumulate_grad_batches)
        total = per_epoch * t.max_epochs
    module = module_cls(model, config.optim, total, **config.task_options)
    check_one_example(module, data)
    if config.model.compile:
        # Compiles the model in place: parameter names, and so checkpoints, stay those of the uncompiled model.
        model.compile(backend=config.model.compile_backend, fullgraph=config.model.compile_fullgraph)
    out = Path(config.output_dir)
    monitor = monitored(config, module_cls)[0]
    last = out / "checkpoints" / "last.ckpt"
    configured = [_component(spec, Callback, f"callbacks[{i}]") for i, spec in enumerate(config.callbacks)]
    checkpointing = _checkpoint_callbacks(config, out, module_cls)
    resume = config.resume
    if resume == "auto":  # continue where a previous run in this folder stopped, or start afresh
        resume = str(last) if last.is_file() else None
    resumed_step = None if resume is None else _global_step(resume)
    trainer = _trainer(
        max_steps=t.max_steps, max_epochs=t.max_epochs, precision=t.precision, gradient_clip_val=t.gradient_clip_val,
        accumulate_grad_batches=t.accumulate_grad_batches, accelerator=t.accelerator, devices=t.devices,
        num_nodes=t.num_nodes, strategy=FullyShardedStrategy() if t.strategy == FSDP else t.strategy,
        val_check_interval=t.val_check_interval,
        check_val_every_n_epoch=t.check_val_every_n_epoch, log_every_n_steps=t.log_every_n_steps,
        limit_val_batches=t.limit_val_batches, enable_progress_bar=t.enable_progress_bar,
        deterministic=t.deterministic, default_root_dir=out,
        use_distributed_sampler=False,  # EpochSeededSampler shares batches out itself, reproducibly
        logger=_loggers(config, out, resumed_step),
        callbacks=[*checkpointing, LearningRateMonitor(logging_interval="step"),
                   RandomStateCheckpoint(), SaveOnSigterm(str(last)), *configured, *(callbacks or [])],
        plugins=[AtomicCheckpointIO()],
    )
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    # Only the first process of a job replaces an old run: the others (started by the launcher after it, or by
    # torchrun beside it) would remove what it has begun to write.
    replace = config.overwrite and config.resume is None and getattr(rank_zero_only, "rank", 0) == 0
    with _run_directory(out, overwrite=replace):
        (out / "config.yaml").write_text(dump_train_config(config))
        try:
            # The model compiles at its first training step, inside fit: the budget must be in force then.
            with activation_memory_budget(config.model.compile_memory_budget):
                trainer.fit(module, datamodule=data, ckpt_path=resume)
        except SIGTERMException:
            return TrainResult(out / "model", {}, out / "checkpoints", interrupted=True,
                               is_global_zero=trainer.is_global_zero)
        except Exception as error:
            translated = _translate_monitor_errors(error, config.task)
            if translated is None:
                raise
            raise translated from None
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
    model_dir = out / "model"
    weights = full_state_dict(model)  # under FSDP a collective: every process contributes its slice
    if trainer.is_global_zero:
        final = _unsharded(model, weights)
        data.prepare_model(final)  # a sharded model's plain copy needs the data's preprocessing as well
        final.save_pretrained(model_dir)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        from .run_card import write_run_card

        write_run_card(out)  # data, recipe, command, metrics and curves, beside the weights it describes
    best = next((Path(c.best_model_path) for c in checkpointing if getattr(c, "monitor", None) == monitor
                 and getattr(c, "best_model_path", "")), None)
    return TrainResult(model_dir, metrics, out / "checkpoints", is_global_zero=trainer.is_global_zero,
                       best_checkpoint=best)


#: ``train`` is ``fit``: the name the command line and older code use.
train = fit


def _evaluate(config: TrainConfig, split: Literal["validation", "test"], ckpt: str) -> tuple[dict[str, float], Path]:
    from .evaluate import EvaluationData, evaluate

    config.validate()
    check_task_settings(config)
    path = find_checkpoint(config, ckpt)
    # The checkpoint's own model record rebuilds the model (evaluate checks the data's classes and input
    # preparation against it); the data, its seed and the task options are the config's.
    metrics = evaluate(path, EvaluationData(config.data, config.seed, dict(config.task_options)), split,
                       accelerator=config.trainer.accelerator, progress=config.trainer.enable_progress_bar)
    return metrics, path


def validate(config: TrainConfig, ckpt: str = "best") -> tuple[dict[str, float], Path]:
    """The validation metrics (``val/...``) of a run's checkpoint (``best``, ``last`` or a path) on the config's
    validation data, in one process; returns them and the checkpoint read."""
    return _evaluate(config, "validation", ckpt)


def test(config: TrainConfig, ckpt: str = "best") -> tuple[dict[str, float], Path]:
    """The test metrics (``test/...``) of a run's checkpoint on the data source's test split (the only place
    a config reads it; a source without one is a :class:`ConfigError`); returns them and the checkpoint read."""
    return _evaluate(config, "test", ckpt)


test.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported into a test module

__all__ = ["RUN_ENTRIES", "TrainResult", "build_datamodule", "build_model", "check_one_example", "check_output_dir",
           "check_training_batches", "find_checkpoint", "fit", "monitored", "test", "train", "transfer_weights",
           "validate"]
