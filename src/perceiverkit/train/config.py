"""Training configuration: dataclasses filled from YAML files and ``--set key=value`` overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..config import ConfigError, config_from_dict, config_to_dict
from ..memory_budget import check_memory_budget

#: The ``precision`` values Lightning's Trainer accepts.
Precision = Literal["64-true", "32-true", "16-true", "bf16-true", "16-mixed", "bf16-mixed", "transformer-engine",
                    "transformer-engine-float16", "64", "32", "16", "bf16", 64, 32, 16]


@dataclass
class OptimConfig:
    """Optimiser and schedule. ``warmup_steps`` of linear warm-up, then cosine decay to ``min_lr_ratio``.
    ``sgd`` is SGD with momentum ``betas[0]``."""

    optimizer: Literal["adamw", "lamb", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.0

    def validate(self) -> None:
        if self.optimizer not in ("adamw", "lamb", "sgd"):
            raise ConfigError(f"optim.optimizer must be 'adamw', 'lamb' or 'sgd', got {self.optimizer!r}")
        for name in ("lr", "weight_decay", "min_lr_ratio"):
            if not isinstance(getattr(self, name), (int, float)):
                raise ConfigError(f"optim.{name} must be a number, got {getattr(self, name)!r}")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ConfigError(f"optim needs lr > 0, weight_decay ≥ 0, warmup_steps ≥ 0; got {self}")


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
    config: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None
    compile: bool = False
    compile_backend: str = "inductor"
    compile_fullgraph: bool = False
    compile_memory_budget: float | None = None
    activation_checkpointing: bool = False
    half_precision_latents: bool = False
    position_init: Literal["random", "sinusoidal", "local"] = "random"


@dataclass
class DataSpec:
    """The data source and loader settings; ``options`` go to the source (e.g. ``root``, ``sequence_length``).
    ``base_dir`` is where relative paths in ``options`` start: the config file's folder (set when the config is
    read from a file, so a config works from any working directory), else the working directory."""

    source: str = ""
    batch_size: int = 32
    num_workers: int = 0
    shuffle: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    base_dir: str | None = None

    def resolve_path(self, value: str | Path) -> Path:
        """``value`` as a path: absolute as given, relative against :attr:`base_dir` (``~`` expanded)."""
        path = Path(value).expanduser()
        return path if path.is_absolute() or self.base_dir is None else Path(self.base_dir) / path


@dataclass
class TrainerSpec:
    """Lightning Trainer settings."""

    max_steps: int = 1000
    max_epochs: int = -1
    precision: Precision = "32-true"
    gradient_clip_val: float | None = 1.0
    accumulate_grad_batches: int = 1
    accelerator: str = "auto"
    devices: int | str | list[int] = 1  # a count, "auto", or device indices
    num_nodes: int = 1
    strategy: str = "auto"
    val_check_interval: int | float | None = None  # batches (int) or a fraction of an epoch (float)
    check_val_every_n_epoch: int | None = 1
    log_every_n_steps: int = 10
    limit_val_batches: int | float | None = None  # batches (int) or a fraction of them (float)
    enable_progress_bar: bool = True
    deterministic: bool = False
    checkpoint_every_n_steps: int | None = None


@dataclass
class TrainConfig:
    """Everything a training run needs; ``output_dir`` receives logs, checkpoints and the final model."""

    task: str = ""
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerSpec = field(default_factory=TrainerSpec)
    task_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    output_dir: str = "runs/default"
    #: A checkpoint to resume from, or ``auto``: ``output_dir/checkpoints/last.ckpt`` if it exists.
    resume: str | None = None

    def validate(self) -> None:
        if not self.task:
            raise ConfigError("task is required")
        if self.model.half_precision_latents and "mixed" not in str(self.trainer.precision):
            raise ConfigError("model.half_precision_latents needs a mixed trainer.precision (bf16-mixed or 16-mixed: "
                              f"it carries the latents in the autocast dtype), got {self.trainer.precision!r}")
        self.optim.validate()
        if self.model.compile:
            _check_compile_backend(self.model.compile_backend)
        if self.model.compile_memory_budget is not None:
            if not self.model.compile:
                raise ConfigError("model.compile_memory_budget needs model.compile=true")
            try:
                check_memory_budget(self.model.compile_memory_budget, "model.compile_memory_budget")
            except ValueError as error:
                raise ConfigError(str(error)) from None


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
        loaded = yaml.safe_load(path.read_text())
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
    return config_from_dict(TrainConfig, data)


def dump_train_config(config: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


__all__ = ["DataSpec", "ModelSpec", "OptimConfig", "TrainConfig", "TrainerSpec", "apply_override",
           "dump_train_config", "load_train_config"]
