"""Peak memory and forward time of a generic Perceiver encoder against the number of inputs N.

Compares perceiverkit's :class:`~perceiverkit.PerceiverEncoder` with chunked cross-attention
(``input_chunk_size``), optionally unchunked, against Transformers' ``PerceiverModel`` (no preprocessor, no
decoder) of the same architecture. Both use random weights: only time and memory are measured, and the
parameter counts are checked to be equal so that the two really are the same sizes.

Every (implementation, N) pair runs in a fresh subprocess, so that CPU peak memory can be read from the process
high-water mark (``ru_maxrss`` after the forward minus ``ru_maxrss`` before it) without earlier, larger runs
hiding it. On CUDA the peak is ``torch.cuda.max_memory_allocated`` above what was allocated before the forward.
A run that runs out of memory (an out-of-memory error, or the process killed by the OS) is recorded as ``oom``.

Writes ``memory_scaling.json`` and, when matplotlib is installed, ``memory_scaling.png`` to ``--out``.

Example::

    python benchmarks/memory_scaling.py --device cpu --sizes 1024 4096 16384 65536 --channels 64 --out runs/mem
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

IMPLS = ("ours-chunked", "ours", "transformers")
LABELS = {
    "ours-chunked": "perceiverkit (chunked cross-attention)",
    "ours": "perceiverkit (unchunked)",
    "transformers": "Transformers PerceiverModel",
}
OOM_MESSAGES = ("out of memory", "can't allocate", "not enough memory", "cannot allocate memory")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=[1024, 4096, 16384, 65536],
                        help="numbers of inputs N to measure")
    parser.add_argument("--channels", type=positive_int, default=64, help="channels per input (d_model)")
    parser.add_argument("--out", type=Path, required=True, help="directory for memory_scaling.json/.png")
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=["ours-chunked", "transformers"])
    parser.add_argument("--chunk-size", type=positive_int, default=2048, help="input_chunk_size for ours-chunked")
    parser.add_argument("--batch-size", type=positive_int, default=1)
    parser.add_argument("--num-latents", type=positive_int, default=256)
    parser.add_argument("--d-latents", type=positive_int, default=512)
    parser.add_argument("--num-self-attends", type=positive_int, default=4, help="num_self_attends_per_block")
    parser.add_argument("--self-heads", type=positive_int, default=8, help="num_self_attention_heads")
    parser.add_argument("--cross-heads", type=positive_int, default=1,
                        help="num_cross_attention_heads (must divide --channels and --d-latents)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="timed forwards per run (median reported)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads in each run")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run before it is abandoned")
    parser.add_argument("--memory-limit-gb", type=float, default=None,
                        help="CPU: cap each run's address space (RLIMIT_AS) so that a too-large size fails with an "
                             "allocation error (recorded as OOM) instead of swapping or waking the OOM killer; "
                             "leave room for the ~1-2 GB of address space that importing torch takes")
    parser.add_argument("--no-plot", action="store_true", help="write only the JSON")
    args = parser.parse_args(argv)
    for name in ("channels", "d_latents"):
        if getattr(args, name) % args.cross_heads:
            parser.error(f"--cross-heads ({args.cross_heads}) must divide --{name.replace('_', '-')} "
                         f"({getattr(args, name)})")
    if args.d_latents % args.self_heads:
        parser.error(f"--self-heads ({args.self_heads}) must divide --d-latents ({args.d_latents})")
    return args


# --- one measurement, in a subprocess ---------------------------------------------------------------------------


def _build(spec: dict[str, Any]) -> Any:
    """The model for ``spec["impl"]``, with attention dropout off (it would only add noise to the timings)."""
    import torch

    arch = spec["arch"]
    torch.manual_seed(0)
    if spec["impl"] == "transformers":
        from transformers import PerceiverConfig, PerceiverModel

        config = PerceiverConfig(
            num_latents=arch["num_latents"], d_latents=arch["d_latents"], d_model=arch["channels"], num_blocks=1,
            num_self_attends_per_block=arch["num_self_attends"], num_self_attention_heads=arch["self_heads"],
            num_cross_attention_heads=arch["cross_heads"], cross_attention_shape_for_attention="kv",
            self_attention_widening_factor=1, cross_attention_widening_factor=1, hidden_act="gelu",
            attention_probs_dropout_prob=0.0, use_query_residual=True,
        )
        model = PerceiverModel(config)
        return model, lambda x: model(inputs=x).last_hidden_state

    from perceiverkit import EncoderConfig, PerceiverEncoder

    config = EncoderConfig(
        num_latents=arch["num_latents"], d_latents=arch["d_latents"], num_blocks=1,
        num_self_attends_per_block=arch["num_self_attends"], num_self_attention_heads=arch["self_heads"],
        num_cross_attention_heads=arch["cross_heads"], cross_attention_shape_for_attention="kv",
        self_attention_widening_factor=1, cross_attention_widening_factor=1, activation="gelu",
        attention_dropout=0.0, use_query_residual=True,
    )
    model = PerceiverEncoder(config, input_channels=arch["channels"])
    if spec["impl"] == "ours-chunked":
        model.input_chunk_size = spec["chunk_size"]
    return model, lambda x: model(x).latents


def _is_oom(error: BaseException) -> bool:
    return isinstance(error, MemoryError) or any(m in str(error).lower() for m in OOM_MESSAGES)


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Build the model, then measure the peak memory of the first forward and the median time of the next ones."""
    if spec.get("memory_limit_gb") and spec["device"] == "cpu":
        limit = int(spec["memory_limit_gb"] * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import torch

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    n, batch = spec["n"], spec["batch_size"]
    result: dict[str, Any] = {"impl": spec["impl"], "n": n, "input_elements": n * spec["arch"]["channels"]}
    try:
        model, forward = _build(spec)
        model.eval().to(device)
        result["parameters"] = sum(p.numel() for p in model.parameters())
        x = torch.randn(batch, n, spec["arch"]["channels"], device=device)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        with torch.inference_mode():
            # A forward over 8 inputs pays one-time costs (thread pools, lazy kernel set-up) without raising the
            # high-water mark; the real warm-up for timing comes after the memory measurement, which must see
            # the first forward at full size.
            if spec["impl"] == "ours-chunked":  # through the chunked code path too, in chunks of 4
                model.input_chunk_size = 4
                forward(x[:, :8])
                model.input_chunk_size = spec["chunk_size"]
            forward(x[:, :8])
            if device.type == "cuda":
                sync()
                torch.cuda.reset_peak_memory_stats(device)
                before = torch.cuda.memory_allocated(device)
                forward(x)
                sync()
                result["peak_memory_mb"] = (torch.cuda.max_memory_allocated(device) - before) / 2**20
            else:
                # ru_maxrss is in KiB on Linux (bytes on macOS).
                scale = 1 if platform.system() == "Darwin" else 1024
                before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
                result["baseline_rss_mb"] = before / 2**20
                forward(x)
                after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
                result["peak_memory_mb"] = (after - before) / 2**20
            times = []
            for _ in range(spec["repeats"]):
                sync()
                start = time.perf_counter()
                forward(x)
                sync()
                times.append(time.perf_counter() - start)
        result["time_s"] = statistics.median(times)
        result["times_s"] = times
        result["status"] = "ok"
    except Exception as error:  # noqa: BLE001 - any failure is recorded, OOM distinguished
        result["status"] = "oom" if _is_oom(error) else "error"
        result["error"] = f"{type(error).__name__}: {str(error)[:500]}"
    return result


def run_in_subprocess(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    base = {"impl": spec["impl"], "n": spec["n"], "input_elements": spec["n"] * spec["arch"]["channels"]}
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {**base, "status": "timeout", "error": f"no result within {timeout:g} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    if proc.returncode < 0 or proc.returncode == 137:
        # SIGKILL with no Python traceback: on Linux almost always the kernel's OOM killer.
        return {**base, "status": "oom", "error": f"killed by signal {-proc.returncode % 128 or 9} (out of memory?)"}
    return {**base, "status": "error", "error": f"exit code {proc.returncode}: {proc.stderr.strip()[-1000:]}"}


# --- the sweep, the JSON and the plot ---------------------------------------------------------------------------


def plot(report: dict[str, Any], path: Path) -> bool:
    """Two log-log panels, peak memory and time vs N; OOM runs marked at the top. False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    panels = (("peak_memory_mb", "peak memory (MiB)"), ("time_s", "forward time (s)"))
    for ax, (key, label) in zip(axes, panels):
        for impl in report["impls"]:
            runs = [r for r in report["results"] if r["impl"] == impl]
            ok = [r for r in runs if r["status"] == "ok" and r.get(key, 0) > 0]
            (line,) = ax.plot([r["n"] for r in ok], [r[key] for r in ok], marker="o", label=LABELS[impl])
            failed = [r["n"] for r in runs if r["status"] != "ok"]
            if failed:
                top = max((r[key] for r in ok), default=1.0)
                ax.scatter(failed, [top * 2] * len(failed), marker="x", color=line.get_color(), s=60)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("number of inputs N")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    cfg = report["config"]
    fig.suptitle(f"Perceiver encoder, {cfg['channels']} channels/input, {cfg['num_latents']}×{cfg['d_latents']} "
                 f"latents, {report['device']} (× = OOM/failed; chunk {cfg['chunk_size']})", fontsize=10)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        print(json.dumps(measure(json.loads(argv[1]))), flush=True)
        return 0
    args = parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda asked for, but CUDA is not available", file=sys.stderr)
        return 2
    arch = {"num_latents": args.num_latents, "d_latents": args.d_latents, "channels": args.channels,
            "num_self_attends": args.num_self_attends, "self_heads": args.self_heads, "cross_heads": args.cross_heads}
    results = []
    for n in sorted(set(args.sizes)):
        for impl in args.impls:
            spec = {"impl": impl, "n": n, "arch": arch, "device": args.device, "batch_size": args.batch_size,
                    "chunk_size": args.chunk_size, "repeats": args.repeats, "threads": args.threads,
                    "memory_limit_gb": args.memory_limit_gb}
            result = run_in_subprocess(spec, args.timeout)
            results.append(result)
            shown = (f"{result['peak_memory_mb']:10.1f} MiB  {result['time_s'] * 1e3:10.1f} ms"
                     if result["status"] == "ok" else f"{result['status'].upper()}: {result.get('error', '')[:120]}")
            print(f"N={n:>9}  {impl:<13} {shown}", flush=True)
    counts = {r["impl"]: r["parameters"] for r in results if "parameters" in r}
    if len(set(counts.values())) > 1:
        print(f"warning: the implementations differ in size: {counts}", file=sys.stderr)
    try:
        from importlib.metadata import version

        transformers_version = version("transformers")
    except Exception:  # noqa: BLE001 - not installed
        transformers_version = None
    report = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu",
        "memory_measure": ("torch.cuda.max_memory_allocated above the allocation before the forward"
                           if args.device == "cuda" else "ru_maxrss after the first forward minus before it"),
        "torch_version": torch.__version__,
        "transformers_version": transformers_version,
        "impls": args.impls,
        "config": {**arch, "batch_size": args.batch_size, "chunk_size": args.chunk_size, "repeats": args.repeats,
                   "threads": args.threads, "memory_limit_gb": args.memory_limit_gb, "parameters": counts},
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory_scaling.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out / 'memory_scaling.json'}")
    if not args.no_plot:
        if plot(report, args.out / "memory_scaling.png"):
            print(f"wrote {args.out / 'memory_scaling.png'}")
        else:
            print("matplotlib is not installed: skipped memory_scaling.png (the JSON has every number)",
                  file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
