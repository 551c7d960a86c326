"""``perceiverkit bench``: perceiverkit against Hugging Face Transformers on identical weights.

For each workload (an official configuration and one kind of step) a seeded random-weight Transformers model
is built and saved with ``save_pretrained``, the same directory is loaded with :func:`perceiverkit.from_pretrained`,
and both run the same inputs on the same device in one process. Reported per implementation: median and mean
time per step, throughput, peak memory, FLOPs per step, achieved TFLOP/s and its fraction of the device's
measured matmul peak; per workload: speed-up, memory ratio and the maximum relative disagreement.

Example::

    from perceiverkit.benchmark import BenchOptions, run_benchmark, to_markdown
    report = run_benchmark(BenchOptions(scale="tiny", workloads="mlm-infer,vision-conv", out="bench-out"))
    print(to_markdown(report))

Transformers must be installed (``pip install "perceiverkit[bench]"``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Names load on first use (PEP 562): `perceiverkit bench --help` reads only `.options`, which needs no torch.
_EXPORTS: dict[str, str] = {
    "PeakMemory": ".measure",
    "count_flops": ".measure",
    "matmul_peak_tflops": ".measure",
    "relative_error": ".measure",
    "time_steps": ".measure",
    "DEFAULT_STEPS": ".options",
    "SCALES": ".options",
    "BenchOptions": ".options",
    "add_arguments": ".options",
    "settings_text": ".options",
    "SCHEMA": ".report",
    "BenchReport": ".report",
    "ImplResult": ".report",
    "WorkloadResult": ".report",
    "compact_table": ".report",
    "load_report": ".report",
    "markdown_table": ".report",
    "to_markdown": ".report",
    "write_report": ".report",
    "TOLERANCE": ".runner",
    "run_benchmark": ".runner",
    "run_workload": ".runner",
    "WORKLOADS": ".workloads",
    "Case": ".workloads",
    "Workload": ".workloads",
    "select_workloads": ".workloads",
    "stitch_tiles": ".workloads",
}

if TYPE_CHECKING:
    from .measure import PeakMemory, count_flops, matmul_peak_tflops, relative_error, time_steps
    from .options import DEFAULT_STEPS, SCALES, BenchOptions, add_arguments, settings_text
    from .report import (
        SCHEMA,
        BenchReport,
        ImplResult,
        WorkloadResult,
        compact_table,
        load_report,
        markdown_table,
        to_markdown,
        write_report,
    )
    from .runner import TOLERANCE, run_benchmark, run_workload
    from .workloads import WORKLOADS, Case, Workload, select_workloads, stitch_tiles


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_STEPS",
    "SCALES",
    "SCHEMA",
    "TOLERANCE",
    "WORKLOADS",
    "BenchOptions",
    "BenchReport",
    "Case",
    "ImplResult",
    "PeakMemory",
    "Workload",
    "WorkloadResult",
    "add_arguments",
    "compact_table",
    "count_flops",
    "load_report",
    "markdown_table",
    "matmul_peak_tflops",
    "relative_error",
    "run_benchmark",
    "run_workload",
    "select_workloads",
    "settings_text",
    "stitch_tiles",
    "time_steps",
    "to_markdown",
    "write_report",
]
