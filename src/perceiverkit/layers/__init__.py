"""Reusable building blocks: attention, MLP, residual blocks and position encodings."""

from .attention import MultiHeadAttention, set_attention_kernel
from .attention_ops import ATTENTION_KERNELS, attend
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
    "ATTENTION_KERNELS",
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
    "set_attention_kernel",
]
