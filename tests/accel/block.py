"""A cross-attention block run as the encoder runs its own (its call takes accel's installed dispatch), with the
settings the tests switch (the fast paths on or off for this block, a chunk size)."""

from __future__ import annotations

import contextlib

from torch import nn

from perceiverkit.accel import check_chunk_size, choose_path, reference_path
from perceiverkit.layers import CrossAttentionBlock


class AccelBlock(nn.Module):
    def __init__(self, block: CrossAttentionBlock) -> None:
        super().__init__()
        self.block = block
        #: False: run the reference path (the fast paths off), as Transformers computes it.
        self.factored_attention = True
        self._chunk: int | None = None

    @property
    def attention(self):
        return self.block.attention

    @property
    def input_chunk_size(self) -> int | None:
        return self._chunk

    @input_chunk_size.setter
    def input_chunk_size(self, value: int | None) -> None:
        self._chunk = check_chunk_size(value, "input_chunk_size")

    def _switch(self):
        return contextlib.nullcontext() if self.factored_attention else reference_path()

    def uses_factored_path(self, inputs, num_queries: int, need_weights: bool = False) -> bool:
        with self._switch():
            return choose_path(self.block, inputs, num_queries, need_weights, self._chunk) in ("factored", "segmented")

    def forward(self, queries, inputs, mask=None, need_weights=False):
        with self._switch():
            return self.block(queries, inputs, mask, need_weights, self._chunk)
