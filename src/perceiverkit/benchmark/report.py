"""Benchmark results: the records, the environment header, and the JSON and markdown renderings.

``bench.json`` layout (``SCHEMA``)::

    {"schema": "perceiverkit-bench/1",
     "environment": {device, device_name, threads, omp_num_threads, SETTINGS, torch, transformers, perceiverkit,
                     python, date, matmul_peak_tflops, matmul_size, memory_method},
     "options": {workloads, batch_size, steps, warmup, seed},
     "results": [{workload, description, mode, setup, batch_size, steps, warmup, agreement, errors,
                  max_rel_error, tolerance, agreement_ok, speedup, memory_ratio, error,
                  ours: IMPL, transformers: IMPL}, ...]}

    IMPL = {median_ms, mean_ms, min_ms, times_ms, samples_per_s, peak_memory_bytes, flops_per_step,
            tflops, fraction_of_peak}
    SETTINGS = dtype, reference_dtype, cast_weights, half_precision_latents, attention_kernel, compile,
               compile_mode, memory_budget, scale (the labelled fields of BenchOptions)

Ratios are Transformers ÷ ours, so above 1 favours ours: ``speedup`` of median step times, ``memory_ratio`` of
peak memories. Peak memory is measured above the memory in use before the steps (weights, inputs, optimizer
state, the previous step's gradients), i.e. activations and workspace. Any value that could not be measured
is ``null``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .options import settings_text

SCHEMA = "perceiverkit-bench/1"
JSON_NAME = "bench.json"
MARKDOWN_NAME = "bench.md"


@dataclass
class ImplResult:
    """One implementation's measurements on one workload."""

    median_ms: float
    mean_ms: float
    min_ms: float
    times_ms: list[float]
    samples_per_s: float
    peak_memory_bytes: int | None
    flops_per_step: int | None
    tflops: float | None
    fraction_of_peak: float | None


@dataclass
class WorkloadResult:
    """Ours against Transformers on one workload. ``error`` is set (and the measurements may be missing) when
    the workload failed, e.g. ran out of memory."""

    workload: str
    description: str
    mode: str
    setup: str = ""
    batch_size: int = 0
    steps: int = 0
    warmup: int = 0
    agreement: str = ""
    errors: dict[str, float] = field(default_factory=dict)
    max_rel_error: float | None = None
    tolerance: float | None = None
    agreement_ok: bool | None = None
    speedup: float | None = None
    memory_ratio: float | None = None
    error: str | None = None
    ours: ImplResult | None = None
    transformers: ImplResult | None = None


@dataclass
class BenchReport:
    """A whole run: where it ran, with which options, and one result per workload."""

    environment: dict[str, Any]
    options: dict[str, Any]
    results: list[WorkloadResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "environment": self.environment, "options": self.options,
                "results": [asdict(r) for r in self.results]}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _version(module: str) -> str | None:
    try:
        return str(__import__(module).__version__)
    except ImportError:
        return None


def environment_info(device: torch.device, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The report header: device and its name, threads, the run's settings
    (:meth:`~perceiverkit.benchmark.options.BenchOptions.settings`), library versions and the date."""
    from .. import __version__

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    return {
        "device": device.type,
        "device_name": name,
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        **settings,
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "perceiverkit": __version__,
        "python": platform.python_version(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "matmul_peak_tflops": None,
        "matmul_size": None,
        "memory_method": None,
    }


# --- markdown ---------------------------------------------------------------------------------------------------

def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if value != 0 and abs(value) < 10 ** -digits:
        return f"{value:.2g}"
    return f"{value:,.{digits}f}"


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / 2**20:,.0f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _pair(a: str, b: str) -> str:
    return f"{a} / {b}"


def _row(r: WorkloadResult) -> list[str]:
    name = f"{r.workload} ({r.mode})"
    if r.ours is None or r.transformers is None:
        return [name, r.setup, *["—"] * 11, f"failed: {r.error}"]
    o, t = r.ours, r.transformers
    gflop = _pair(_num(o.flops_per_step and o.flops_per_step / 1e9),
                  _num(t.flops_per_step and t.flops_per_step / 1e9))
    tflops = _pair(_num(o.tflops, 2), _num(t.tflops, 2))
    peak = _pair(_num(o.fraction_of_peak and 100 * o.fraction_of_peak),
                 _num(t.fraction_of_peak and 100 * t.fraction_of_peak))
    err = "—" if r.max_rel_error is None else f"{r.max_rel_error:.1e}"
    if r.agreement_ok is False:
        err += " ⚠"
    if r.error:
        err += f" ({r.error})"
    return [name, r.setup, _num(o.median_ms), _num(t.median_ms), _ratio(r.speedup), _num(o.samples_per_s, 2),
            _num(t.samples_per_s, 2), _mib(o.peak_memory_bytes), _mib(t.peak_memory_bytes), _ratio(r.memory_ratio),
            gflop, tflops, peak, err]


HEADERS = ["workload", "setup", "ours ms/step", "HF ms/step", "speed-up", "ours samples/s", "HF samples/s",
           "ours peak MiB", "HF peak MiB", "memory ratio", "GFLOP/step ours / HF", "TFLOP/s ours / HF",
           "% of peak ours / HF", "max rel. error"]


def markdown_table(results: list[WorkloadResult]) -> str:
    """The results as a markdown table, one row per workload."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join("---" for _ in HEADERS) + "|"]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in results]
    return "\n".join(lines)


COMPACT_HEADERS = ["workload", "ours ms", "HF ms", "speed-up", "memory ratio", "ours TFLOP/s (% peak)",
                   "max rel. error"]


def compact_table(results: list[WorkloadResult]) -> str:
    """A narrow markdown table (for terminals): times, ratios, our throughput and the agreement."""
    lines = ["| " + " | ".join(COMPACT_HEADERS) + " |", "|" + "|".join("---" for _ in COMPACT_HEADERS) + "|"]
    for r in results:
        if r.ours is None or r.transformers is None:
            cells = [r.workload, "—", "—", "—", "—", "—", f"failed: {r.error}"]
        else:
            pct = "" if r.ours.fraction_of_peak is None else f" ({100 * r.ours.fraction_of_peak:.0f} %)"
            warning = " ⚠" if r.agreement_ok is False else ""
            err = "—" if r.max_rel_error is None else f"{r.max_rel_error:.1e}{warning}"
            cells = [r.workload, _num(r.ours.median_ms), _num(r.transformers.median_ms), _ratio(r.speedup),
                     _ratio(r.memory_ratio), _num(r.ours.tflops, 2) + pct, err]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(report: BenchReport) -> str:
    """Header (device, versions, date, matmul peak) followed by the results table."""
    env, opts = report.environment, report.options
    peak = env.get("matmul_peak_tflops")
    peak_text = "not measured" if peak is None else f"{peak:.3g} TFLOP/s ({env['matmul_size']}² {env['dtype']} matmul)"
    lines = [
        "# perceiverkit bench: perceiverkit vs Transformers, identical weights",
        "",
        f"- device: {env['device']} ({env['device_name']}), {env['threads']} thread(s)",
        f"- {settings_text(env)}; "
        f"{opts.get('warmup')} warm-up + {opts.get('steps')} timed steps (after an untimed check step)",
        f"- torch {env['torch']}, transformers {env['transformers']}, perceiverkit {env['perceiverkit']}, "
        f"python {env['python']}",
        f"- date: {env['date']}",
        f"- matmul peak: {peak_text}; peak memory: {env.get('memory_method') or '—'}, above the pre-step baseline",
        "- ratios are Transformers ÷ ours (above 1: ours is faster / needs less memory); "
        "max rel. error = max|ours − HF| / max|HF| (training: first-step loss and gradient norm, dropout off)",
        "",
        markdown_table(report.results),
        "",
    ]
    return "\n".join(lines)


def load_report(path: str | os.PathLike[str]) -> BenchReport:
    """Read a ``bench.json`` (or the folder holding it) back into a :class:`BenchReport`."""
    where = Path(path)
    if where.is_dir():
        where = where / JSON_NAME
    data = json.loads(where.read_text(encoding="utf-8"))
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{where} is not a perceiverkit bench report (schema {data.get('schema')!r}, "
                         f"expected {SCHEMA!r})")
    results = []
    for row in data["results"]:
        impls = {k: ImplResult(**row[k]) if row.get(k) else None for k in ("ours", "transformers")}
        results.append(WorkloadResult(**{**row, **impls}))
    return BenchReport(data["environment"], data["options"], results)


def write_report(report: BenchReport, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``bench.json`` and ``bench.md`` into ``directory`` (created if needed); returns both paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / JSON_NAME, out / MARKDOWN_NAME
    json_path.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path.write_text(to_markdown(report), encoding="utf-8")
    return json_path, md_path
