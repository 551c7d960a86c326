"""The position-wise feed-forward network that follows each attention, and the activations it accepts."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

# Names follow Transformers' `hidden_act` values so that converted configs carry over unchanged.
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": F.tanh,
    "sigmoid": F.sigmoid,
    "mish": F.mish,
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
