"""Training configuration: dataclasses filled from YAML files and ``--set key=value`` overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..config import ConfigError, config_from_dict, config_to_dict

#: The ``precision`` values Lightning's Trainer accepts.
Precision = Literal["64-true", "32-true", "16-true", "bf16-true", "16-mixed", "bf16-mixed", "transformer-engine",
                    "transformer-engine-float16", "64", "32", "16", "bf16", 64, 32, 16]


@dataclass
class OptimConfig:
    """Optimiser and schedule. ``warmup_steps`` of linear warm-up, then cosine decay to ``min_lr_ratio``.
    ``sgd`` is SGD with momentum ``betas[0]``."""

    optimizer: Literal["adamw", "lamb", "sgd"] = "adamw"
    """adamw, lamb (large batches) or sgd (with momentum betas[0])."""
    lr: float = 1e-3
    """Peak learning rate, reached after the warm-up."""
    weight_decay: float = 0.01
    """Decoupled weight decay (biases, norms, embeddings, latents and positions are not decayed)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam's moment decay rates; sgd uses the first as its momentum."""
    warmup_steps: int = 100
    """Optimiser steps of linear warm-up from zero."""
    min_lr_ratio: float = 0.0
    """Where the cosine decay ends, as a fraction of lr."""

    def validate(self) -> None:
        _require(self.lr > 0, f"optim.lr must be > 0, got {self.lr!r}")
        _require(self.weight_decay >= 0, f"optim.weight_decay must be ≥ 0, got {self.weight_decay!r}")
        _require(self.warmup_steps >= 0, f"optim.warmup_steps must be ≥ 0, got {self.warmup_steps!r}")
        _require(0 <= self.min_lr_ratio <= 1, f"optim.min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio!r}")
        _require(all(0 <= b < 1 for b in self.betas), f"optim.betas must lie in [0, 1), got {list(self.betas)}")


@dataclass
class ModelSpec:
    """Which model to train: a ``preset`` name, a task ``config`` dict (fields of the task's config dataclass),
    or ``init_from`` a checkpoint (fine-tuning; weights whose names and shapes match are copied).

    ``position_init`` picks a starting point from :mod:`perceiverkit.train.init_schemes`: ``"sinusoidal"``
    position tables, or ``"local"`` cross-attention for byte MLMs (latents start out gathering neighbourhoods of
    positions, which shortens the long unigram-loss plateau of a Perceiver MLM trained from scratch).

    ``compile`` compiles the model's forward with :func:`torch.compile` using ``compile_backend`` (``inductor``
    generates kernels; ``eager`` or ``aot_eager`` only trace, which is quick and useful to check a model
    compiles). ``compile_fullgraph`` turns any graph break into an error instead of a silent fallback to eager.
    ``compile_memory_budget`` (in [0, 1], with ``compile``) lets the compiled step recompute cheap forward results
    in the backward pass instead of keeping them (:mod:`perceiverkit.memory_budget`); None keeps PyTorch's
    default. ``half_precision_latents`` carries the latents through the self-attention stack in the autocast
    dtype of a ``bf16-mixed``/``16-mixed`` run instead of float32 (half the activation bytes; LayerNorm
    statistics stay float32; see :attr:`perceiverkit.encoder.PerceiverEncoder.half_precision_latents`)."""

    preset: str | None = None
    """A preset of the task to start from (perceiverkit presets lists them); model.config overrides its fields."""
    config: dict[str, Any] = field(default_factory=dict)
    """Fields of the task's model config (e.g. encoder.num_latents); unset fields keep the preset's or defaults."""
    init_from: str | None = None
    """A checkpoint to fine-tune: every tensor whose name and shape match is copied."""
    compile: bool = False
    """Compile the model's forward with torch.compile."""
    compile_backend: str = "inductor"
    """torch.compile backend: inductor generates kernels; eager and aot_eager only trace."""
    compile_fullgraph: bool = False
    """Make any graph break an error instead of a silent fallback to eager."""
    compile_memory_budget: float | None = None
    """With compile: in [0, 1], recompute cheap forward results in the backward pass (null: PyTorch's default)."""
    activation_checkpointing: bool = False
    """Recompute each latent self-attention layer in the backward pass instead of keeping its activations."""
    half_precision_latents: bool = False
    """In a bf16-mixed/16-mixed run, carry the latents through the self-attention stack in that dtype."""
    position_init: Literal["random", "sinusoidal", "local"] = "random"
    """Initial position tables: random, sinusoidal, or local cross-attention (byte MLMs)."""


@dataclass
class DataSpec:
    """The data source and loader settings; ``options`` go to the source (e.g. ``root``, ``sequence_length``).
    ``base_dir`` is where relative paths in ``options`` start: the config file's folder (set when the config is
    read from a file, so a config works from any working directory), else the working directory."""

    source: str = ""
    """The data source, one of the task's (see docs/training.md); required."""
    batch_size: int = 32
    """Examples per batch and process."""
    num_workers: int = 0
    """DataLoader worker processes (0: load in the training process)."""
    shuffle: bool = True
    """Shuffle the training data each epoch (seeded: runs and resumed runs see the same order)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Options of the data source (paths, sizes, validation_size, ...), documented per source."""
    base_dir: str | None = None
    """Where relative paths in options start; set to the config file's folder when read from a file."""

    def validate(self) -> None:
        _require(self.batch_size > 0, f"data.batch_size must be > 0, got {self.batch_size!r}")
        _require(self.num_workers >= 0, f"data.num_workers must be ≥ 0, got {self.num_workers!r}")

    def resolve_path(self, value: str | Path) -> Path:
        """``value`` as a path: absolute as given, relative against :attr:`base_dir` (``~`` expanded)."""
        path = Path(value).expanduser()
        return path if path.is_absolute() or self.base_dir is None else Path(self.base_dir) / path


MonitorMode = Literal["min", "max"]


@dataclass
class EarlyStoppingSpec:
    """Stop training when the monitored validation metric has not improved for ``patience`` validations."""

    patience: int = 3
    """Validations without improvement before training stops."""
    monitor: str | None = None
    """The metric to watch (null: trainer.monitor, else the task's validation metric)."""
    mode: MonitorMode | None = None
    """min or max: which direction is better (null: trainer.monitor_mode, else the task's)."""
    min_delta: float = 0.0
    """The smallest change that counts as an improvement."""

    def validate(self) -> None:
        _require(self.patience >= 1, f"trainer.early_stopping.patience must be ≥ 1, got {self.patience!r}")
        _require(self.min_delta >= 0, f"trainer.early_stopping.min_delta must be ≥ 0, got {self.min_delta!r}")
        _check_monitor("trainer.early_stopping.monitor", self.monitor)


@dataclass
class TrainerSpec:
    """Lightning Trainer settings, and which checkpoints are kept."""

    max_steps: int = 1000
    """Optimiser steps to train (-1: until max_epochs)."""
    max_epochs: int = -1
    """Epochs to train (-1: until max_steps)."""
    precision: Precision = "32-true"
    """32-true, or bf16-mixed / 16-mixed on GPUs (any precision Lightning accepts)."""
    gradient_clip_val: float | None = 1.0
    """Clip the gradient norm to this value (null: no clipping)."""
    accumulate_grad_batches: int = 1
    """Batches whose gradients are summed per optimiser step."""
    accelerator: str = "auto"
    """cpu, gpu, cuda, mps or auto."""
    devices: int | str | list[int] = 1
    """A device count, "auto", or a list of device indices."""
    num_nodes: int = 1
    """Machines in the job."""
    strategy: str = "auto"
    """auto, ddp or fsdp (perceiverkit's FSDP2), or another Lightning strategy name."""
    val_check_interval: int | float | None = None
    """Validate every this many batches (int) or fraction of an epoch (float); null: at each epoch's end."""
    check_val_every_n_epoch: int | None = 1
    """Validate every n epochs (null with an int val_check_interval: count batches across epochs)."""
    log_every_n_steps: int = 10
    """Log training metrics every n steps."""
    limit_val_batches: int | float | None = None
    """Validate on this many batches (int) or fraction of them (float); null: all."""
    enable_progress_bar: bool = True
    """Show a progress bar."""
    deterministic: bool = False
    """Use deterministic algorithms only (bit-identical reruns, slower)."""
    checkpoint_every_n_steps: int | None = None
    """Write last.ckpt every n optimiser steps (null: at each epoch's end); resume=auto continues from it."""
    save_top_k: int = 1
    """Keep the k best checkpoints by monitor (checkpoints/best-step*.ckpt; 0: none, -1: all) besides last.ckpt."""
    monitor: str | None = None
    """The validation metric that ranks checkpoints, e.g. val/accuracy (null: the task's validation metric)."""
    monitor_mode: MonitorMode | None = None
    """min or max: which direction of monitor is better (null: the task's, or max for accuracy/psnr, else min)."""
    early_stopping: EarlyStoppingSpec | None = None
    """Stop when the monitored metric stops improving, e.g. {patience: 3} (null: off)."""

    def validate(self) -> None:
        _require(self.max_steps == -1 or self.max_steps > 0,
                 f"trainer.max_steps must be > 0 or -1, got {self.max_steps}")
        _require(self.max_epochs == -1 or self.max_epochs > 0,
                 f"trainer.max_epochs must be > 0 or -1, got {self.max_epochs}")
        _require(self.max_steps > 0 or self.max_epochs > 0, "set trainer.max_steps or trainer.max_epochs (both are -1)")
        _require(self.gradient_clip_val is None or self.gradient_clip_val > 0,
                 f"trainer.gradient_clip_val must be > 0 or null, got {self.gradient_clip_val}")
        for name in ("accumulate_grad_batches", "num_nodes", "log_every_n_steps"):
            _require(getattr(self, name) >= 1, f"trainer.{name} must be ≥ 1, got {getattr(self, name)}")
        for name in ("check_val_every_n_epoch", "checkpoint_every_n_steps"):
            value = getattr(self, name)
            _require(value is None or value >= 1, f"trainer.{name} must be ≥ 1 or null, got {value}")
        _require(self.val_check_interval is None or self.val_check_interval > 0,
                 f"trainer.val_check_interval must be > 0 or null, got {self.val_check_interval}")
        limit = self.limit_val_batches
        _require(limit is None or (limit >= 0 if isinstance(limit, int) else 0 <= limit <= 1),
                 f"trainer.limit_val_batches must be a count ≥ 0 or a fraction in [0, 1], got {limit}")
        devices = self.devices
        _require(devices == "auto" or (isinstance(devices, int) and devices > 0) or devices == -1
                 or (isinstance(devices, list) and len(devices) > 0 and all(d >= 0 for d in devices)),
                 f"trainer.devices must be a count > 0, -1, \"auto\" or a list of device indices, got {devices!r}")
        _require(self.save_top_k >= -1, f"trainer.save_top_k must be ≥ -1 (-1: keep all), got {self.save_top_k}")
        _check_monitor("trainer.monitor", self.monitor)


def _check_monitor(where: str, monitor: str | None) -> None:
    # Only validation metrics rank checkpoints: training metrics are per batch, and Lightning only learns that a
    # name was never logged at the first validation, after the run folder exists.
    _require(monitor is None or monitor.startswith("val/"),
             f"{where} must name a validation metric (val/loss, val/accuracy, ...), got {monitor!r}")


@dataclass
class ComponentSpec:
    """A Lightning logger or callback by class path, with its constructor's keyword arguments."""

    class_path: str
    """The class, as module.Class (e.g. lightning.pytorch.loggers.MLFlowLogger)."""
    init_args: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of its constructor."""

    def check(self, where: str) -> None:
        """Refuse a class path that cannot name a class (whether it exists is known only once it is imported)."""
        module, _, name = self.class_path.rpartition(".")
        _require(bool(module) and name.isidentifier() and all(p.isidentifier() for p in module.split(".")),
                 f"{where}.class_path must look like package.module.Class, got {self.class_path!r}")


#: Logger names the config accepts besides class paths (what each writes under output_dir: csv/, tensorboard/).
LOGGERS: tuple[str, ...] = ("csv", "tensorboard")


@dataclass
class TrainConfig:
    """Everything a training run needs; ``output_dir`` receives logs, checkpoints and the final model."""

    task: str = ""
    """The task to train (perceiverkit presets lists them; aliases such as mlm work); required."""
    model: ModelSpec = field(default_factory=ModelSpec)
    """Which model: a preset, config fields, or a checkpoint to fine-tune."""
    data: DataSpec = field(default_factory=DataSpec)
    """The data source and loader."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimiser and learning-rate schedule."""
    trainer: TrainerSpec = field(default_factory=TrainerSpec)
    """Steps, precision, devices, validation and checkpoints."""
    task_options: dict[str, Any] = field(default_factory=dict)
    """Options of the task's training module (e.g. num_points for optical flow), documented per task."""
    seed: int = 0
    """Seeds the model's initialisation, data order and augmentation."""
    output_dir: str = "runs/default"
    """Where the run writes config.yaml, logs, checkpoints/ and the final model/."""
    resume: str | None = None
    """A checkpoint to resume from, or auto: output_dir/checkpoints/last.ckpt if it exists."""
    overwrite: bool = False
    """Train into an output_dir that holds a finished model (model/), replacing that run's files."""
    loggers: list[str | ComponentSpec] = field(default_factory=lambda: list(LOGGERS))
    """csv, tensorboard, or {class_path: ..., init_args: {...}} for any Lightning logger."""
    callbacks: list[ComponentSpec] = field(default_factory=list)
    """Extra Lightning callbacks: {class_path: ..., init_args: {...}}."""

    def validate(self) -> None:
        if not self.task:
            raise ConfigError("task is required (perceiverkit fit TASK, or task: in the config)")
        _require(self.seed >= 0, f"seed must be ≥ 0, got {self.seed}")
        _require(bool(self.output_dir), "output_dir must not be empty")
        for i, logger in enumerate(self.loggers):
            if isinstance(logger, str) and logger not in LOGGERS:
                raise ConfigError(f"loggers[{i}]: unknown logger {logger!r}; expected one of {list(LOGGERS)} or "
                                  "{class_path: package.module.Class, init_args: {...}}")
            if isinstance(logger, ComponentSpec):
                logger.check(f"loggers[{i}]")
        for i, callback in enumerate(self.callbacks):
            callback.check(f"callbacks[{i}]")
        if self.resume not in (None, "auto") and not Path(self.resume).is_file():
            raise ConfigError(f"resume: no checkpoint at {self.resume}; give a .ckpt file, or auto")
        if self.model.half_precision_latents and "mixed" not in str(self.trainer.precision):
            raise ConfigError("model.half_precision_latents needs a mixed trainer.precision (bf16-mixed or 16-mixed: "
                              f"it carries the latents in the autocast dtype), got {self.trainer.precision!r}")
        self.optim.validate()
        if self.model.compile:
            _check_compile_backend(self.model.compile_backend)
        if self.model.compile_memory_budget is not None:
            if not self.model.compile:
                raise ConfigError("model.compile_memory_budget needs model.compile=true")
            from ..memory_budget import check_memory_budget  # imports torch: only when a budget is set

            try:
                check_memory_budget(self.model.compile_memory_budget, "model.compile_memory_budget")
            except ValueError as error:
                raise ConfigError(str(error)) from None


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def model_config(config: TrainConfig) -> Any:  # Any: the task's own config dataclass
    """The task's model config of ``config``: the preset's (or the task's defaults) with ``model.config`` over it,
    checked field by field (a wrong type or an unknown key names its ``model.config.…`` path)."""
    from ..tasks.registry import get_preset, get_task

    task = get_task(config.task)
    spec = config.model
    if spec.preset:
        if spec.preset not in (preset.name for preset in task.presets):
            raise ConfigError(f"preset {spec.preset!r} is not a {task.name} preset; its presets are "
                              f"{[preset.name for preset in task.presets]}")
        base = config_to_dict(get_preset(spec.preset).make_config())
    else:
        base = {}
    return config_from_dict(task.config_class, _merge(base, spec.config), where="model.config")


def check_task_settings(config: TrainConfig) -> None:
    """Check what only the task registry knows: the task, its data source and its model config. Imports the
    task modules (torch) but not Lightning, so these errors too come before the slow part of a start."""
    from ..tasks.registry import get_task

    task = get_task(config.task)
    if not config.data.source:
        raise ConfigError(f"data.source is required; task {task.name!r} trains on {sorted(task.data_sources)} "
                          "(e.g. --set data.source=NAME)")
    if config.data.source not in task.data_sources:
        raise ConfigError(f"unknown data source {config.data.source!r} for task {task.name!r}; "
                          f"expected one of {sorted(task.data_sources)}")
    if task.lightning_module is None:
        raise ConfigError(f"task {task.name!r} has no training module")
    model_config(config)


def check_output_dir(config: TrainConfig) -> None:
    """Refuse an ``output_dir`` that holds a finished run (``model/``) unless the config asks to ``overwrite`` it
    or to ``resume`` (a finished run's old model would otherwise be silently replaced). Here, beside the config and
    without torch, so that the command line answers it at once rather than after importing torch and Lightning."""
    out = Path(config.output_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output_dir {out} is a file; give a folder")
    if (out / "model").exists() and not config.overwrite and config.resume is None:
        raise ConfigError(f"output_dir {out} already holds a finished run (model/); choose another output_dir, or "
                          "pass --overwrite (overwrite: true) to replace it, or resume=auto to continue it")


def _check_compile_backend(backend: object) -> None:
    # Checked here rather than left to torch.compile, which only fails at the first training step, after the
    # data has been loaded and the run folder written.
    import torch._dynamo

    known = torch._dynamo.list_backends(exclude_tags=())  # includes the debugging backends such as "eager"
    if not isinstance(backend, str) or backend not in known:
        raise ConfigError(f"model.compile_backend must be one of {known}, got {backend!r}")


def _parse_value(text: str) -> object:
    import yaml

    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:  # YAML 1.1 reads "3e-4" as a string; on a command line it is always meant as a number
            return float(value)
        except ValueError:
            pass
    return value


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) to a nested dict."""
    if "=" not in assignment:
        raise ConfigError(f"overrides look like key.path=value, got {assignment!r}")
    key, value = assignment.split("=", 1)
    node = data
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {key}: {part} is not a section")
    node[parts[-1]] = _parse_value(value)


def load_train_config(task: str | None = None, path: str | Path | None = None,
                      overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (optional), apply overrides, and validate into :class:`TrainConfig`."""
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"no training config at {path}")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise ConfigError(f"{path} is not valid YAML: {' '.join(str(error).split())}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping of settings")
        data = loaded
    if task:
        if data.get("task") not in (None, task):
            raise ConfigError(f"{path} is a {data['task']!r} config, not {task!r}")
        data["task"] = task
    if path is not None and isinstance(data.get("data", {}), dict):
        data.setdefault("data", {}).setdefault("base_dir", str(path.resolve().parent))
    for assignment in overrides or []:
        apply_override(data, assignment)
    return config_from_dict(TrainConfig, data, where="")


def dump_train_config(config: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


__all__ = ["LOGGERS", "ComponentSpec", "DataSpec", "EarlyStoppingSpec", "ModelSpec", "MonitorMode", "OptimConfig",
           "TrainConfig", "TrainerSpec", "apply_override", "check_output_dir", "check_task_settings",
           "dump_train_config", "load_train_config", "model_config"]
