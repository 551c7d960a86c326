"""Optimisers and learning-rate schedules: AdamW (PyTorch's, fused where it can be) and LAMB, with linear warm-up +
cosine decay."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, overload

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

#: Devices with a fused AdamW kernel in PyTorch: one vectorised pass over every parameter instead of a loop of
#: small ops per tensor (several times faster per step on CPU; docs/benchmarks.md has the measurement).
FUSED_ADAMW_DEVICES = ("cpu", "cuda")


#: What the optimisers here take: parameter tensors, or torch's param groups (dicts with a ``params`` entry
#: and per-group hyper-parameters).
Params = Iterable[Tensor] | Iterable[dict[str, Any]]


def _param_groups(params: Params) -> list[dict[str, Any]]:
    """``params`` as param groups holding lists, so that generators (``model.parameters()``, a group's
    ``params``) can be read twice; bare tensors become one group, as torch itself would group them."""
    items = list(params)
    groups = [dict(g, params=list(g["params"])) for g in items if isinstance(g, dict)]
    tensors = [p for p in items if not isinstance(p, dict)]
    if groups and tensors:
        raise TypeError("params must be all tensors or all param-group dicts, got a mix of both")
    return [{"params": tensors}] if tensors else groups


def adamw(params: Params, lr: float, betas: tuple[float, float] = (0.9, 0.999),
          weight_decay: float = 0.01, fused: bool = True) -> torch.optim.AdamW:
    """PyTorch's AdamW, with its fused kernel when ``fused`` and every parameter is a floating-point tensor on one
    of :data:`FUSED_ADAMW_DEVICES` (same update up to float rounding), else its default implementation."""
    groups = _param_groups(params)
    tensors = [p for g in groups for p in g["params"]]
    fusable = fused and bool(tensors) and all(p.device.type in FUSED_ADAMW_DEVICES and p.is_floating_point()
                                              for p in tensors)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, weight_decay=weight_decay, fused=fusable or None)


class Lamb(Optimizer):
    """LAMB (You et al., 2019): Adam's update rescaled per parameter tensor by the trust ratio ‖w‖ / ‖update‖,
    which keeps large-batch training stable. Weight decay is decoupled and part of the update."""

    def __init__(self, params: Params, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.0) -> None:
        if lr <= 0 or eps <= 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1) or weight_decay < 0:
            raise ValueError(f"invalid LAMB hyper-parameters lr={lr}, betas={betas}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    # The same overloads as torch's Optimizer.step: the closure's loss comes back only when there is a closure.
    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                m_hat = m / (1 - beta1 ** state["step"])
                v_hat = v / (1 - beta2 ** state["step"])
                update = m_hat / (v_hat.sqrt() + group["eps"])
                if group["weight_decay"]:
                    update = update.add(p, alpha=group["weight_decay"])
                w_norm, u_norm = p.norm(), update.norm()
                # A zero norm (fresh bias, zero update) falls back to a plain Adam step.
                trust = torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, torch.ones_like(w_norm))
                p.add_(update * trust, alpha=-group["lr"])
        return loss


def warmup_cosine(optimizer: Optimizer, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> LambdaLR:
    """Linear warm-up from 0 over ``warmup_steps``, then cosine decay to ``min_ratio`` × the base rate."""
    if total_steps < 1 or warmup_steps < 0:
        raise ValueError(f"need total_steps ≥ 1 and warmup_steps ≥ 0, got {total_steps} and {warmup_steps}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
