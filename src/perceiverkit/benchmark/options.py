"""What ``perceiverkit bench`` runs, defined once: the :class:`BenchOptions` dataclass.

Each field carries its help text (and, where the type does not say it, its choices) in its metadata. From these
fields come the command's flags (:func:`add_arguments`, read back by :meth:`BenchOptions.from_args`) and the
settings line of a report (:func:`settings_text`), so a new option is one new field.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .scales import SCALES, Scale

# No torch at import time: `perceiverkit bench --help` builds its flags from this module alone.

#: Precisions: fp32, or bf16 / fp16 autocast (fp16 without loss scaling: meant for inference).
Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = typing.get_args(Precision)
#: The kernel choices of :func:`perceiverkit.accel.set_attention_kernel` (a test keeps the two equal; importing
#: accel here would import torch).
ATTENTION_KERNELS: tuple[str, ...] = ("auto", "fused", "explicit")
#: (warm-up steps, timed steps) when not given.
DEFAULT_STEPS: dict[str, tuple[int, int]] = {"full": (3, 10), "cpu": (0, 1), "tiny": (1, 2)}
#: ``torch.compile`` modes the suite accepts.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def about(help: str, *, choices: tuple[str, ...] | None = None, metavar: str | None = None, nargs: str | None = None,
          label: str | None = None, always: bool = False, flag: bool = True) -> dict[str, Any]:
    """A :class:`BenchOptions` field's metadata: its help text and flag details; ``label``: its name in a report's
    settings line, where it appears when it differs from its default (or ``always``); ``flag=False``: not a
    command-line flag."""
    return {"help": help, "choices": choices, "metavar": metavar, "nargs": nargs, "label": label, "always": always,
            "flag": flag}


@dataclass
class BenchOptions:
    """What ``perceiverkit bench`` runs. ``None`` fields take the scale's defaults (see :meth:`resolve`)."""

    device: Literal["cpu", "cuda"] = field(default="cpu", metadata=about(
        "where both implementations run (default %(default)s)"))
    dtype: Precision = field(default="fp32", metadata=about(
        "our precision: fp32, or bf16 / fp16 autocast (fp16 has no loss scaling: inference); default %(default)s",
        label="dtype", always=True))
    reference_dtype: Precision | None = field(default=None, metadata=about(
        "Transformers' precision when it should differ from --dtype (e.g. --dtype bf16 --reference-dtype fp32: "
        "ours in bf16 against Transformers' fp32 path, speed and agreement both)", label="Transformers' dtype"))
    cast_weights: bool = field(default=False, metadata=about(
        "inference: run ours with its weights cast to --dtype (half precision end to end; LayerNorm and softmax "
        "keep float32 statistics) instead of under autocast; training keeps autocast",
        label="ours with weights cast to dtype for inference"))
    half_precision_latents: bool = field(default=False, metadata=about(
        "with --dtype bf16/fp16 under autocast: carry our latents through the self-attention stack in that dtype "
        "instead of float32 (Transformers keeps its float32 residual stream)",
        label="ours with half-precision latents"))
    attention_kernel: str = field(default="auto", metadata=about(
        "how our attention is computed: auto (per shape), fused (SDPA) or explicit (matmul-softmax-matmul); "
        "Transformers always runs its own; default %(default)s", choices=ATTENTION_KERNELS,
        label="our attention kernel"))
    compile: bool = field(default=False, metadata=about(
        "wrap ours in torch.compile (Transformers runs eagerly, as it ships)", label="ours compiled"))
    compile_mode: str | None = field(default=None, metadata=about(
        "torch.compile mode; implies --compile (reduce-overhead replays CUDA graphs)", choices=COMPILE_MODES,
        label="compile mode"))
    memory_budget: float | None = field(default=None, metadata=about(
        "with --compile: activation memory budget of our compiled training steps in [0, 1] (recompute cheap forward "
        "results in the backward pass; see perceiverkit.memory_budget)", metavar="B", label="activation memory budget"))
    scale: Scale | None = field(default=None, metadata=about(
        "full: published sizes and batches; cpu: batch 1 for a few cores; tiny: test models (default: full on "
        "cuda, cpu on cpu)", label="scale", always=True))
    workloads: str | list[str] | tuple[str, ...] | None = field(default=None, metadata=about(
        "subset, space- or comma-separated (default: all; a wrong name lists them)", metavar="NAME", nargs="+"))
    batch_size: int | None = field(default=None, metadata=about("override every workload's batch size"))
    steps: int | None = field(default=None, metadata=about("timed steps (default: 10 full, 1 cpu, 2 tiny)"))
    warmup: int | None = field(default=None, metadata=about(
        "untimed warm-up steps after the check step (default: 3 full, 0 cpu, 1 tiny; at least 1 with --compile)"))
    seed: int = field(default=0, metadata=about("seed of the random weights and inputs (default %(default)s)"))
    matmul_size: int | None = field(default=None, metadata=about(
        "side of the square matmul that measures the device's peak (default by device and scale)"))
    out: str | Path | None = field(default=None, metadata=about(
        "folder for bench.json and bench.md, rewritten after every workload"))
    progress: bool = field(default=True, metadata=about("a progress bar on stderr", flag=False))

    @property
    def transformers_dtype(self) -> str:
        """Transformers' precision: ``reference_dtype``, or ``dtype`` when that is not given."""
        return self.reference_dtype or self.dtype

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> BenchOptions:
        """The options that :func:`add_arguments`' flags were given as."""
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.metadata["flag"]})

    def resolve(self) -> BenchOptions:
        """Check the options; returns a copy with the scale, warm-up and timed steps filled in, and ``compile``
        set when a ``compile_mode`` is given."""
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        import torch

        from ..memory_budget import check_memory_budget
        from .workloads import select_workloads

        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for but CUDA is not available")
        for name, value in (("dtype", self.dtype), ("reference_dtype", self.transformers_dtype)):
            if value not in PRECISIONS:
                raise ValueError(f"{name} must be one of {list(PRECISIONS)}, got {value!r}")
        if self.cast_weights and self.dtype == "fp32":
            raise ValueError("cast_weights needs dtype bf16 or fp16 (the weights are float32 already)")
        scale = self.scale or ("full" if self.device == "cuda" else "cpu")
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
        if self.compile_mode is not None and self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode must be one of {list(COMPILE_MODES)}, got {self.compile_mode!r}")
        compile = self.compile or self.compile_mode is not None
        warmup, steps = DEFAULT_STEPS[scale]
        if compile:
            warmup = max(warmup, 1)  # the first call compiles; it must not be timed
        warmup = warmup if self.warmup is None else self.warmup
        steps = steps if self.steps is None else self.steps
        if steps < 1 or warmup < 0:
            raise ValueError(f"need steps >= 1 and warmup >= 0, got steps={steps}, warmup={warmup}")
        check_memory_budget(self.memory_budget, "memory_budget")
        if self.attention_kernel not in ATTENTION_KERNELS:
            raise ValueError(f"attention_kernel must be one of {list(ATTENTION_KERNELS)}, "
                             f"got {self.attention_kernel!r}")
        if self.half_precision_latents and (self.dtype == "fp32" or self.cast_weights):
            raise ValueError("half_precision_latents needs dtype bf16 or fp16 under autocast (not fp32, not "
                             "cast_weights, where the latents are in the weights' dtype already)")
        if self.memory_budget is not None and not compile:
            raise ValueError("memory_budget needs compile=True (it steers how torch.compile splits a training step)")
        if compile and warmup < 1:
            raise ValueError("compile needs warmup >= 1: the first call of a compiled model compiles it")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        select_workloads(self.workloads)  # unknown names fail before any work
        return dataclasses.replace(self, scale=scale, warmup=warmup, steps=steps, compile=compile)

    def settings(self) -> dict[str, Any]:
        """The fields a report's settings line describes, by name (stored in the report's environment)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata["label"]}


def _without_none(hint: Any) -> Any:
    """``X`` of ``X | None`` (the first member of a union); ``hint`` itself when it is no union."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(member for member in typing.get_args(hint) if member is not type(None))
    return hint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`BenchOptions` field (``--batch-size`` for ``batch_size``), typed, with its help."""
    hints = typing.get_type_hints(BenchOptions)
    for f in dataclasses.fields(BenchOptions):
        meta = f.metadata
        if not meta["flag"]:
            continue
        flag = "--" + f.name.replace("_", "-")
        if hints[f.name] is bool:
            assert f.default is False, f"{f.name}: a flag can only switch a setting on"
            parser.add_argument(flag, action="store_true", help=meta["help"])
            continue
        kind = _without_none(hints[f.name])
        choices = meta["choices"] or (typing.get_args(kind) if typing.get_origin(kind) is Literal else None)
        value_type = kind if kind in (int, float) else str
        parser.add_argument(flag, type=value_type, default=f.default, choices=choices, metavar=meta["metavar"],
                            nargs=meta["nargs"], help=meta["help"])


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:g}" if isinstance(value, float) else str(value)


def settings_text(settings: Mapping[str, Any]) -> str:
    """``dtype: bf16; ours compiled: yes; scale: full``: the labelled :class:`BenchOptions` fields of a report,
    each shown when it differs from its default (or always, for the precision and the scale)."""
    parts = []
    for f in dataclasses.fields(BenchOptions):
        label = f.metadata["label"]
        value = settings.get(f.name, f.default)
        if label and (f.metadata["always"] or value not in (f.default, None)):
            parts.append(f"{label}: {_text(value)}")
    return "; ".join(parts)


__all__ = ["ATTENTION_KERNELS", "COMPILE_MODES", "DEFAULT_STEPS", "PRECISIONS", "SCALES", "BenchOptions", "Precision",
           "Scale", "about", "add_arguments", "settings_text"]
