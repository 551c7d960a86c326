"""The encoder's cross-attention on image inputs: factored (basis space) against projected keys/values.

For each image preset at its published input size, times the encoder's cross-attention block on the factored
inputs the preprocessor produces, once in their basis space (``accel/factored.py``) and once projecting them as
Transformers does (the reference path, ``perceiverkit.accel.reference_path()``), counts both paths' FLOPs, and
checks that they agree. Random weights; inference.

    python benchmarks/factored_attention.py                                # CPU, batch 1, fp32 (~2 min, 2 cores)
    python benchmarks/factored_attention.py --device cuda --batch-size 64 --dtype bf16
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

import torch

from perceiverkit.accel import FactoredInputs, reference_path
from perceiverkit.benchmark import count_flops
from perceiverkit.tasks import create_model

CASES = {  # preset: a function of the batch size giving its raw input
    "vision-perceiver-learned": lambda b: torch.randn(b, 3, 224, 224),
    "vision-perceiver-fourier": lambda b: torch.randn(b, 3, 224, 224),
    "vision-perceiver-conv": lambda b: torch.randn(b, 3, 224, 224),
    "optical-flow-perceiver": lambda b: torch.randn(b, 2, 27, 368, 496),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_ms(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32", help="bf16/fp16: autocast")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--presets", nargs="+", default=list(CASES), choices=list(CASES))
    args = parser.parse_args(argv)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    rows = []
    for name in args.presets:
        torch.manual_seed(0)
        model = create_model(name).to(device).eval()
        perceiver = model.perceiver
        raw = CASES[name](args.batch_size).to(device)
        block, latents_param = perceiver.encoder.cross_attention, perceiver.encoder.latents
        with torch.inference_mode(), torch.autocast(device.type, dtype, enabled=dtype != torch.float32):
            factored = perceiver.preprocess(raw).encoder_inputs
            assert isinstance(factored, FactoredInputs), name
            latents = latents_param.expand(args.batch_size, -1, -1)
            result = {}
            for path in (True, False):
                with contextlib.nullcontext() if path else reference_path():
                    out, flops = count_flops(lambda: block(latents, factored)[0])
                    ms = time_ms(lambda: block(latents, factored), device, args.repeats)
                result[path] = (out.float(), flops, ms)
        error = ((result[True][0] - result[False][0]).abs().max() / result[False][0].abs().max()).item()
        rows.append((name, factored.basis_width, factored.shape[2], result, error))
    print(f"device {device}, batch {args.batch_size}, {args.dtype}, torch {torch.__version__}")
    print("| preset | basis / input channels | factored ms | projected ms | speed-up | GFLOP factored / projected "
          "| max rel. difference |")
    print("|---|---|---|---|---|---|---|")
    for name, width, channels, result, error in rows:
        (_, f_flops, f_ms), (_, p_flops, p_ms) = result[True], result[False]
        print(f"| {name} | {width} / {channels} | {f_ms:,.1f} | {p_ms:,.1f} | {p_ms / f_ms:.2f}× "
              f"| {f_flops / 1e9:,.1f} / {p_flops / 1e9:,.1f} | {error:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
