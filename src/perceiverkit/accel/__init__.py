"""Every speed path of perceiverkit, each a faster computation of what :mod:`perceiverkit.layers` computes.

- :mod:`.kernels`: which attention kernel runs (SDPA or an explicit softmax), for every attention module;
- :mod:`.factored`: the encoder's cross-attention to image-like inputs in their narrow basis;
- :mod:`.segmented`: the same for several modalities at once, under one softmax;
- :mod:`.chunked`: the encoder's cross-attention to long inputs a chunk at a time (online softmax,
  :mod:`.online_softmax`);
- :mod:`.cross_attention`: the one function the encoder calls to take the last three;
- :mod:`.switch`: :func:`use_fast_paths` / :func:`reference_path`, the global switch back to the reference.

Each module's docstring states the condition under which its path is taken, and ``tests/accel/`` checks each
against the reference (outputs and gradients). Imports point one way: this package imports ``layers/``, never the
reverse; the kernel choice reaches :class:`~perceiverkit.layers.attention.MultiHeadAttention` through
:func:`~perceiverkit.layers.attention.install_attention_kernel`, which :mod:`.kernels` calls on import.
"""

from .chunked import attend_chunked, check_chunk_size
from .cross_attention import InputView, as_tensor, choose_path, fast_cross_attention
from .factored import FactoredInputs
from .kernels import ATTENTION_KERNELS, AttentionKernel, set_attention_kernel
from .segmented import SegmentedInputs
from .switch import fast_paths_enabled, reference_path, use_fast_paths

__all__ = [
    "ATTENTION_KERNELS",
    "AttentionKernel",
    "FactoredInputs",
    "InputView",
    "SegmentedInputs",
    "as_tensor",
    "attend_chunked",
    "check_chunk_size",
    "choose_path",
    "fast_cross_attention",
    "fast_paths_enabled",
    "reference_path",
    "set_attention_kernel",
    "use_fast_paths",
]
