"""What a preprocessor hands to the encoder and the decoder."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class Preprocessed:
    """A modality turned into an array of feature vectors.

    Attributes:
        inputs: ``(B, N, C)`` features the encoder attends to (positions included).
        index_dims: the natural grid shape of the ``N`` inputs, e.g. ``(L,)`` for text or ``(H, W)`` for images.
        inputs_without_pos: the features before position encodings were added, for decoders that reuse them.
        modality_sizes: for multimodal inputs, how many of the ``N`` inputs each modality contributed.
    """

    inputs: Tensor
    index_dims: tuple[int, ...]
    inputs_without_pos: Tensor | None = None
    modality_sizes: dict[str, int] | None = None

    @property
    def batch_size(self) -> int:
        return self.inputs.shape[0]
