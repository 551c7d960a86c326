"""Thin entry point of the side-by-side benchmark (perceiverkit against Transformers on identical weights).

    python benchmarks/run.py [options of `perceiverkit bench`]   # same as `perceiverkit bench ...`
    python benchmarks/run.py --summary DIR                       # compact table of an earlier DIR/bench.json

Runs from a checkout without installing: ``src`` is put first on the import path. Everything else lives in
:mod:`perceiverkit.benchmark`; see ``perceiverkit bench --help`` for the options and ``benchmarks/gpu.sh`` for
the full-scale GPU run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--summary"]:
        if len(args) != 2:
            print("usage: run.py --summary DIR (a folder holding bench.json)", file=sys.stderr)
            return 2
        from perceiverkit.benchmark import compact_table, load_report, settings_text

        try:
            report = load_report(args[1])
        except (OSError, ValueError) as error:
            print(f"run.py --summary: error: {error}", file=sys.stderr)
            return 2
        env = report.environment
        peak = env.get("matmul_peak_tflops")
        print(f"{env['device_name']}: {settings_text(env)}; "
              f"matmul peak {'—' if peak is None else f'{peak:.3g}'} TFLOP/s, torch {env['torch']}, "
              f"transformers {env['transformers']}")
        print(compact_table(report.results))
        return 0
    from perceiverkit.cli import main as cli_main

    return cli_main(["bench", *args])


if __name__ == "__main__":
    sys.exit(main())
