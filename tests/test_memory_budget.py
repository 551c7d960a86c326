"""The activation memory budget reaches torch.compile's forward/backward partitioner: a compiled training step
keeps fewer bytes for its backward pass and still computes the eager gradients."""

from __future__ import annotations

import copy

import pytest
import torch
import torch._functorch.config as functorch_config

from perceiverkit.layers.blocks import SelfAttentionBlock
from perceiverkit.memory_budget import activation_memory_budget, check_memory_budget, kept_for_backward


@pytest.mark.parametrize("value", [None, 0, 0.5, 1])
def test_budgets_in_range_are_accepted(value):
    assert check_memory_budget(value) == (None if value is None else float(value))


@pytest.mark.parametrize("value", [-0.1, 1.5, "0.5", True, float("nan")])
def test_other_budgets_are_rejected_naming_the_range(value):
    with pytest.raises(ValueError, match=r"must be a number in \[0, 1\]"):
        check_memory_budget(value)


def test_the_context_sets_and_restores_pytorchs_setting():
    default = functorch_config.activation_memory_budget
    with activation_memory_budget(0.3):
        assert functorch_config.activation_memory_budget == 0.3
    assert functorch_config.activation_memory_budget == default
    with activation_memory_budget(None):
        assert functorch_config.activation_memory_budget == default


def test_a_budget_keeps_fewer_activations_and_the_same_gradients():
    torch.manual_seed(0)
    blocks = [SelfAttentionBlock(dim=64, qk_channels=64, v_channels=64, num_heads=4) for _ in range(3)]
    model = torch.nn.Sequential(*[_FirstOutput(b) for b in blocks])
    x = torch.randn(4, 32, 64)
    results = []
    for budget in (None, 0.5):
        copied = copy.deepcopy(model)
        with torch.autocast("cpu", torch.bfloat16):
            kept = kept_for_backward(copied, lambda m: m(x).float().square().mean(), budget)
        results.append((kept, {n: p.grad for n, p in copied.named_parameters()}))
    (default_bytes, default_grads), (budget_bytes, budget_grads) = results
    assert default_bytes > 3 * 4 * 32 * 64 * 2  # at least a few (4, 32, 64) bf16 activations per layer
    # Per layer, the default keeps the LayerNorm outputs, the float32 residual stream and bf16 weight copies;
    # recomputing them leaves about 30 % (torch 2.13).
    assert budget_bytes < 0.5 * default_bytes, (budget_bytes, default_bytes)
    for name, grad in default_grads.items():
        torch.testing.assert_close(budget_grads[name], grad, msg=name)


class _FirstOutput(torch.nn.Module):
    """A block's output without its (absent) attention weights, for ``nn.Sequential``."""

    def __init__(self, block: torch.nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)[0]
