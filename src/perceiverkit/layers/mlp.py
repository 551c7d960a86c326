"""The position-wise feed-forward network that follows each attention, and the activations it accepts."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Names follow Transformers' `hidden_act` values so that converted configs carry over unchanged: every one of its
# activations without learned parameters (its "prelu" and "xielu" have weights, which Perceiver checkpoints lack).
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,
    "gelu_python": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_python_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),  # the same tanh approximation, written out
    "gelu_accurate": lambda x: F.gelu(x, approximate="tanh"),  # likewise
    "gelu_10": lambda x: F.gelu(x).clamp(-10.0, 10.0),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "laplace": lambda x: 0.5 * (1.0 + torch.erf((x - 0.707107) / (0.282095 * math.sqrt(2.0)))),
    "relu": F.relu,
    "relu2": lambda x: F.relu(x).square(),
    "relu6": F.relu6,
    "leaky_relu": F.leaky_relu,
    "hardswish": F.hardswish,
    "linear": lambda x: x,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": F.tanh,
    "sigmoid": F.sigmoid,
    "mish": F.mish,
    "sqrtsoftplus": lambda x: F.softplus(x).sqrt(),
}


def get_activation(name: str) -> Callable[[Tensor], Tensor]:
    """Look up an activation by name, with an error listing the supported names."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}") from None


class MLP(nn.Module):
    """``Linear(d, f·d) → activation → Linear(f·d, d)`` with widening factor ``f``."""

    def __init__(self, dim: int, widening_factor: int = 1, activation: str = "gelu") -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, widening_factor * dim)
        self.fc2 = nn.Linear(widening_factor * dim, dim)
        self.activation_name = activation
        self.activation = get_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.activation(self.fc1(x)))
