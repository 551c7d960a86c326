"""Trading recomputation for activation memory in compiled training.

When ``torch.compile`` splits a training step into forward and backward graphs, it chooses which forward results
to keep for the backward pass and which to recompute there. By default it keeps nearly everything that is not a
cheap elementwise op: in a Perceiver's latent stack that is, per layer, both LayerNorm outputs, the float32
residual stream at two points and the half-precision copies of every weight under autocast. PyTorch's
*activation memory budget* (``torch._functorch.config.activation_memory_budget``, 1.0 = keep as much as by
default, 0.0 = recompute all that can be) lets its partitioner recompute more, choosing the ops that are cheapest
to redo per byte saved: normalisations, casts and residual sums come first, matrix products last.

What a budget keeps per layer of the language MLM is measured by ``benchmarks/memory_budget.py`` (figures in
docs/benchmarks.md, "Activation memory budget"). The budget applies only to compiled training (eager mode and
inference keep nothing for a backward pass).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn


def check_memory_budget(budget: object, name: str = "memory budget") -> float | None:
    """``budget`` as a float in [0, 1], or None (PyTorch's default); anything else raises ``ValueError``."""
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0.0 <= float(budget) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1] (1 = PyTorch's default, keep the most), got {budget!r}")
    return float(budget)


@contextlib.contextmanager
def activation_memory_budget(budget: float | None) -> Iterator[None]:
    """Within this context, graphs that ``torch.compile`` builds for training keep at most ``budget`` (in [0, 1])
    of the activation memory they would keep by default; ``None`` leaves PyTorch's setting alone.

    A compiled model compiles at its first call, so that call must happen inside the context.
    """
    budget = check_memory_budget(budget)
    if budget is None:
        yield
        return
    import torch._functorch.config as functorch_config

    with functorch_config.patch(activation_memory_budget=budget):
        yield


def kept_for_backward(model: nn.Module, loss_fn: Callable[[nn.Module], Tensor], budget: float | None = None) -> int:
    """Bytes that the compiled training step of ``model`` keeps from its forward pass for its backward pass.

    Compiles ``model`` with PyTorch's min-cut partitioner (the one inductor uses) under ``budget``, but without
    generating kernels, runs ``loss_fn(compiled_model).backward()`` once (gradients accumulate in ``model``) and
    sums the tensors the forward graphs hand to the backward graphs, leaving out parameters and inputs, which
    are kept in any case. Run it under autocast to see a mixed-precision step. A diagnostic for choosing a
    budget; the partition does not depend on the device, the attention kernels' own saved state may.
    """
    import torch._dynamo as dynamo
    from functorch.compile import make_boxed_func, min_cut_rematerialization_partition
    from torch._dynamo.backends.common import aot_autograd

    kept: list[int] = []

    def forward_compiler(graph: torch.fx.GraphModule, _: object) -> Callable[..., object]:
        (outputs,) = [node.args[0] for node in graph.graph.nodes if node.op == "output"]
        for node in outputs:
            value = node.meta.get("val") if isinstance(node, torch.fx.Node) else None
            if isinstance(value, Tensor) and node.op != "placeholder" and value.dim() > 0:  # not the loss
                kept.append(value.numel() * value.element_size())
        return make_boxed_func(graph)

    backend = aot_autograd(fw_compiler=forward_compiler, bw_compiler=lambda graph, _: make_boxed_func(graph),
                           partition_fn=min_cut_rematerialization_partition)
    dynamo.reset()
    try:
        compiled = torch.compile(model, backend=backend)
        # A compiled module is an OptimizedModule, itself a module; torch.compile's stub promises only a callable.
        if not isinstance(compiled, nn.Module):
            raise TypeError(f"torch.compile returned a {type(compiled).__name__}, expected a module")
        with activation_memory_budget(budget):
            loss_fn(compiled).backward()
    finally:
        dynamo.reset()
    return sum(kept)


__all__ = ["activation_memory_budget", "check_memory_budget", "kept_for_backward"]
