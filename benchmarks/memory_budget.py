"""How much the activation memory budget saves on the language MLM's compiled training step.

For each budget, the bytes that the compiled step (bf16 autocast) keeps from its forward pass for its backward
pass, per example and per latent self-attention layer (the difference between models with the two ``--layers``
counts, divided by the difference in layers, so the encoder's and decoder's share drops out). Batch 1 would
be dominated by the bf16 weight copies, which do not grow with the batch. CPU only: it inspects the forward/backward partition (device-independent) and generates no kernels.
Attention dropout is off so that CPU attention saves what CUDA's fused kernels save (output and
log-sum-exp), not a probability matrix.

    python benchmarks/memory_budget.py                       # budgets 1.0 (default), 0.8, 0.5; ~10 min, 2 cores
    python benchmarks/memory_budget.py --budgets 1 0.9 --batch-size 2 --layers 2 6
"""

from __future__ import annotations

import argparse
import sys

import torch

from perceiverkit.benchmark.workloads import WORKLOADS
from perceiverkit.memory_budget import check_memory_budget, kept_for_backward
from perceiverkit.tasks import PRESETS, TASKS, preset_config

MIB = 2**20


def kept_bytes(layers: int, batch_size: int, budget: float | None) -> int:
    config = preset_config("language-perceiver")
    config.encoder.num_self_attends_per_block = layers
    config.encoder.attention_dropout = 0.0
    torch.manual_seed(0)
    model = TASKS[PRESETS["language-perceiver"].task](config).train()
    case = WORKLOADS["mlm-train"].case("full", batch_size)
    inputs = case.make_inputs(torch.Generator().manual_seed(0))
    with torch.autocast("cpu", torch.bfloat16):
        return kept_for_backward(model, lambda m: case.run_ours(m, inputs, config), budget)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[1.0, 0.8, 0.5])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--layers", type=int, nargs=2, default=[2, 4], metavar=("FEW", "MORE"),
                        help="self-attention layers of the two models compared")
    args = parser.parse_args(argv)
    few, more = args.layers
    try:
        for budget in args.budgets:
            check_memory_budget(budget, "--budgets")
        if not 1 <= few < more:
            raise ValueError(f"--layers needs 1 <= FEW < MORE, got {few} {more}")
    except ValueError as error:
        print(f"memory_budget.py: error: {error}", file=sys.stderr)
        return 2
    print(f"language MLM, 2048 bytes, 307 masked, bf16 autocast, batch {args.batch_size} (CPU partition)")
    print(f"| budget | kept, {few} layers (MiB/example) | kept, {more} layers | per self-attention layer |")
    print("|---|---|---|---|")
    for budget in args.budgets:
        small, large = (kept_bytes(n, args.batch_size, budget) / args.batch_size / MIB for n in (few, more))
        print(f"| {budget:g} | {small:.2f} | {large:.2f} | {(large - small) / (more - few):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
