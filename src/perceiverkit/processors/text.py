"""Text in and out: byte embeddings plus learned positions; logits through the tied input embedding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Preprocessed


class TextPreprocessor(nn.Module):
    """Token ids ``(B, L)`` → token embedding + learned absolute position embedding, ``(B, L, d_model)``."""

    def __init__(self, vocab_size: int, d_model: int, max_position_embeddings: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(max_position_embeddings, d_model)

    @property
    def num_channels(self) -> int:
        return self.token_embedding.embedding_dim

    def forward(self, input_ids: Tensor) -> Preprocessed:
        if not isinstance(input_ids, Tensor):
            raise TypeError(f"input_ids must be a torch.Tensor of token ids, got {type(input_ids).__name__}")
        if input_ids.dtype.is_floating_point or input_ids.dtype.is_complex or input_ids.dtype == torch.bool:
            raise TypeError(f"input_ids must be an integer tensor, got dtype {input_ids.dtype}")
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch, sequence_length), got {tuple(input_ids.shape)}")
        batch, length = input_ids.shape
        if batch == 0 or length == 0:
            raise ValueError(f"input_ids must not be empty, got shape {tuple(input_ids.shape)}")
        if length > self.max_position_embeddings:
            raise ValueError(
                f"sequence length {length} exceeds the model's {self.max_position_embeddings} position embeddings; "
                "truncate the input (e.g. tokenizer(..., truncation=True))"
            )
        if not torch.compiler.is_compiling():
            low, high = int(input_ids.min()), int(input_ids.max())
            if low < 0 or high >= self.vocab_size:
                raise ValueError(f"token ids must lie in [0, {self.vocab_size}), got values in [{low}, {high}]")
        tokens = self.token_embedding(input_ids)
        positions = self.position_embedding.weight[:length]
        return Preprocessed(inputs=tokens + positions, index_dims=(length,), inputs_without_pos=tokens)


class TiedEmbeddingDecoder(nn.Module):
    """Logits over the vocabulary as ``hidden @ embedding.T + bias``, reusing the input embedding matrix.

    The embedding is held by reference, not registered as a submodule: it belongs to the preprocessor, so the
    weights appear once in the state dict and move with it.
    """

    _embedding: nn.Embedding  # set through __dict__ in __init__, so nn.Module does not register it

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self.__dict__["_embedding"] = embedding
        self.bias = nn.Parameter(torch.zeros(embedding.num_embeddings))

    def forward(self, hidden: Tensor) -> Tensor:
        return F.linear(hidden, self._embedding.weight.to(hidden.dtype), self.bias.to(hidden.dtype))
