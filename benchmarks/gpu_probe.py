"""Probe where GPU time goes, for choosing attention kernels (one short device call; prints compact tables).

1. Every attention shape of the official models, timed with each way of computing it: SDPA as PyTorch picks,
   SDPA with the head width zero-padded to a multiple of 8 (which the fused kernels need), each SDPA backend
   forced, and an explicit matmul-softmax-matmul; bf16, CUDA-event timing, median of repeats.
2. A kernel profile of our MLM training step and vision-learned inference at full scale: the largest kernels
   by GPU time, their time by kind (matrix products, attention, fused elementwise, ...), and the share of time
   the GPU sat idle. Eager by default; ``--compiled`` profiles the models as the benchmark's fastest settings
   run them: compiled, the MLM step with bf16 latents (``half_precision_latents``), vision with bf16 weights.

    python benchmarks/gpu_probe.py                          # on a CUDA machine
    python benchmarks/gpu_probe.py --profile-only --compiled
    python benchmarks/gpu_probe.py --small                  # CPU smoke test with shrunken shapes
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

# name: (batch, heads, queries, keys, qk width per head, v width per head)
SHAPES = {
    "mlm enc cross": (64, 8, 256, 2048, 32, 160),
    "mlm self": (64, 8, 256, 256, 32, 160),
    "mlm dec (307 q)": (64, 8, 307, 256, 32, 96),
    "vis-learned enc": (64, 1, 512, 50176, 512, 512),
    "vis-fourier enc": (64, 1, 512, 50176, 261, 261),
    "vis-conv enc": (64, 1, 512, 3136, 322, 322),
    "vis self": (64, 8, 512, 512, 128, 128),
    "flow enc": (8, 1, 2048, 182528, 322, 322),
    "flow self": (8, 16, 2048, 2048, 32, 32),
    "flow dec": (8, 1, 182528, 2048, 512, 512),
    "mm enc": (4, 1, 784, 50657, 704, 704),
}


def bench(fn, device, repeats: int = 10) -> float:
    """Median milliseconds of ``fn`` over ``repeats`` calls after two warm-ups."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def padded_sdpa(q, k, v):
    d, dv = q.shape[-1], v.shape[-1]
    pad, pad_v = -d % 8, -dv % 8
    if pad:
        q, k = F.pad(q, (0, pad)), F.pad(k, (0, pad))
    if pad_v:
        v = F.pad(v, (0, pad_v))
    return F.scaled_dot_product_attention(q, k, v, scale=d ** -0.5)[..., :dv]


def same_width_sdpa(q, k, v):
    """Queries and keys zero-padded to the values' width (exact: the scores do not change), so that kernels which
    need one head width for all three apply."""
    d, dv = q.shape[-1], v.shape[-1]
    if d < dv:
        q, k = F.pad(q, (0, dv - d)), F.pad(k, (0, dv - d))
    return F.scaled_dot_product_attention(q, k, v, scale=d ** -0.5)


def explicit(q, k, v):
    scores = torch.matmul(q, k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    return torch.matmul(scores.softmax(-1), v)


def attention_table(device, dtype, small: bool, backward: bool = False, only: str | None = None) -> None:
    """With ``backward``, each time is a forward and backward pass (gradients for queries, keys and values)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                "cudnn": SDPBackend.CUDNN_ATTENTION}
    columns = ["sdpa", "sdpa pad8", "sdpa same width", *backends, "explicit"]
    print(f"{'forward + backward' if backward else 'forward'}, {dtype}")
    print("| attention (B,H,M,N,Dqk,Dv) | GFLOP | " + " | ".join(f"{c} ms" for c in columns) + " | best TFLOP/s |")
    print("|---|---|" + "---|" * (len(columns) + 1))
    for name, (b, h, m, n, d, dv) in SHAPES.items():
        if only is not None and only not in name:
            continue
        if small:
            b, m, n = 1, min(m, 64), min(n, 256)
        gen = torch.Generator(device=device).manual_seed(0)
        q = torch.randn(b, h, m, d, device=device, dtype=dtype, generator=gen)
        k = torch.randn(b, h, n, d, device=device, dtype=dtype, generator=gen)
        v = torch.randn(b, h, n, dv, device=device, dtype=dtype, generator=gen)
        reference = explicit(q.float(), k.float(), v.float())
        flops = 2 * b * h * m * n * (d + dv) * (3.5 if backward else 1)  # backward: ~2.5× the forward's products
        for t in (q, k, v):
            t.requires_grad_(backward)
        grad = torch.randn_like(reference, dtype=dtype) if backward else None
        cells, best = [], None
        runs = {"sdpa": lambda: F.scaled_dot_product_attention(q, k, v), "sdpa pad8": lambda: padded_sdpa(q, k, v),
                "sdpa same width": lambda: same_width_sdpa(q, k, v), "explicit": lambda: explicit(q, k, v)}
        for backend_name, backend in backends.items():
            def forced(backend=backend):
                with sdpa_kernel([backend]):
                    return padded_sdpa(q, k, v)
            runs[backend_name] = forced
        for column in columns:
            try:
                out = runs[column]()
                error = float((out.detach().float() - reference).abs().max() / reference.abs().max())
                if error > 5e-2:
                    cells.append(f"wrong {error:.1e}")
                    continue
                timed = (lambda run=runs[column]: run().backward(grad)) if backward else runs[column]
                ms = bench(timed, device)
                cells.append(f"{ms:.2f}")
                best = ms if best is None else min(best, ms)
            except (RuntimeError, torch.OutOfMemoryError) as err:
                cells.append("n/a" if "No available kernel" in str(err) or "not supported" in str(err).lower()
                             else type(err).__name__)
            finally:
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        tflops = f"{flops / (best / 1000) / 1e12:.0f}" if best else "—"
        print(f"| {name} {(b, h, m, n, d, dv)} | {flops / 1e9:.0f} | " + " | ".join(cells) + f" | {tflops} |")
        del reference


#: Kernel-name fragments → kind, first match wins (cuBLAS/CUTLASS GEMMs, SDPA backends, Inductor's Triton).
KINDS = (("attention", ("flash", "fmha", "cudnn", "attention", "sdpa")),
         ("matmul", ("gemm", "nvjet", "xmma", "cutlass", "sm90", "wgmma", "ampere", "matmul")),
         ("optimizer", ("adam", "multi_tensor", "foreach")),
         ("fused elementwise / norm (triton)", ("triton",)),
         ("softmax", ("softmax",)),
         ("copy / cast / fill", ("copy", "memcpy", "memset", "cast", "convert", "fill")),
         ("elementwise (aten)", ("elementwise",)),
         ("reduce", ("reduce",)))


def kernel_kind(name: str) -> str:
    lower = name.lower()
    return next((kind for kind, keys in KINDS if any(k in lower for k in keys)), "other")


def profile_table(device, dtype, small: bool, compiled: bool = False) -> None:
    from torch.profiler import ProfilerActivity, profile

    from perceiverkit.benchmark.workloads import WORKLOADS
    from perceiverkit.tasks import create_model

    scale = "tiny" if small else "full"
    for workload, preset in (("mlm-train", "language-perceiver"), ("vision-learned", "vision-perceiver-learned")):
        case = WORKLOADS[workload].case(scale)
        if small:
            print(f"({workload}: --small skips the full-size profile)")
            continue
        model = create_model(preset).to(device)
        train = WORKLOADS[workload].mode == "train"
        if compiled and train:
            model.perceiver.encoder.half_precision_latents = True
        elif compiled:
            model = model.to(dtype)
        inputs = {k: v.to(device) if isinstance(v, torch.Tensor) else v
                  for k, v in case.make_inputs(torch.Generator().manual_seed(0)).items()}
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True) if train else None
        model.train(train)
        runnable = torch.compile(model) if compiled else model

        def step():
            if optimizer is None:
                with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=not compiled):
                    return case.run_ours(runnable, inputs, model.config)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=dtype):
                loss = case.run_ours(runnable, inputs, model.config)
            loss.backward()
            optimizer.step()
            return loss

        for _ in range(3):
            step()
        torch.cuda.synchronize()
        wall = bench(step, device, repeats=3)
        activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA]
        with profile(activities=activities) as prof:
            for _ in range(2):
                step()
            torch.cuda.synchronize()
        # Kernels only: the CPU-side operators that launched them (aten::mm, ...) carry the same device time
        # again, and "Command Buffer Full" marks a full launch queue, not work.
        events = [e for e in prof.key_averages() if e.device_type.name == "CUDA" and e.self_device_time_total > 0
                  and e.key != "Command Buffer Full"]
        total = sum(e.self_device_time_total for e in events) / 2 / 1000  # ms per step
        print(f"\n{workload} {'compiled' if compiled else 'eager'}: {wall:.1f} ms/step wall, {total:.1f} ms/step of kernels "
              f"(GPU idle {max(0.0, 1 - total / wall) * 100:.0f} %)")
        print("| kernel | ms/step | % | calls/step |")
        print("|---|---|---|---|")
        for e in sorted(events, key=lambda e: -e.self_device_time_total)[:14]:
            ms = e.self_device_time_total / 2 / 1000
            print(f"| {e.key[:90]} | {ms:.2f} | {ms / total * 100:.1f} | {e.count // 2} |")
        kinds: dict[str, list[float]] = {}
        for e in events:
            entry = kinds.setdefault(kernel_kind(e.key), [0.0, 0])
            entry[0] += e.self_device_time_total / 2 / 1000
            entry[1] += e.count // 2
        print("| kind | ms/step | % | kernels/step |")
        print("|---|---|---|---|")
        for kind, (ms, calls) in sorted(kinds.items(), key=lambda item: -item[1][0]):
            print(f"| {kind} | {ms:.2f} | {ms / total * 100:.1f} | {calls} |")
        model = optimizer = None  # free the GPU memory before the next workload
        torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="shrunken shapes (CPU smoke test)")
    parser.add_argument("--profile-only", action="store_true", help="skip the attention table")
    parser.add_argument("--attention-only", action="store_true", help="skip the kernel profile")
    parser.add_argument("--backward", action="store_true", help="time attention forward + backward")
    parser.add_argument("--shapes", metavar="TEXT", help="only attention shapes whose name contains TEXT (e.g. mlm)")
    parser.add_argument("--compiled", action="store_true",
                        help="profile compiled models (MLM with bf16 latents, vision with bf16 weights)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # SDPA explains every kernel it skips
    device = torch.device("cuda" if torch.cuda.is_available() and not args.small else "cpu")
    dtype = torch.bfloat16
    print(f"{torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, torch {torch.__version__}")
    if not args.profile_only:
        attention_table(device, dtype, args.small, args.backward, args.shapes)
    if not args.attention_only:
        profile_table(device, dtype, args.small, args.compiled)


if __name__ == "__main__":
    main()
