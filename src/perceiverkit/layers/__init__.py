"""The reference model's parts: attention, MLP, residual blocks and position encodings.

Faster computations of the same results live in :mod:`perceiverkit.accel`, which imports this package (never the
reverse).
"""

from .attention import MultiHeadAttention, attend
from .blocks import CrossAttentionBlock, SelfAttentionBlock
from .mlp import ACTIVATIONS, MLP, get_activation
from .position import (
    FourierPositionEncoding,
    TrainablePositionEncoding,
    fourier_channels,
    fourier_features,
    linear_positions,
)

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "CrossAttentionBlock",
    "FourierPositionEncoding",
    "MultiHeadAttention",
    "SelfAttentionBlock",
    "TrainablePositionEncoding",
    "attend",
    "fourier_channels",
    "fourier_features",
    "get_activation",
    "linear_positions",
]
