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

from .measure import PeakMemory, count_flops, matmul_peak_tflops, relative_error, time_steps
from .options import DEFAULT_STEPS, BenchOptions, add_arguments, settings_text
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
from .workloads import SCALES, WORKLOADS, Case, Workload, select_workloads, stitch_tiles

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
