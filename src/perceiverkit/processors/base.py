"""What a preprocessor hands to the encoder and the decoder."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ..layers.factored import FactoredInputs, SegmentedInputs


@dataclass
class Preprocessed:
    """A modality turned into an array of feature vectors.

    Attributes:
        inputs: ``(B, N, C)`` features the encoder attends to (positions included).
        index_dims: the natural grid shape of the ``N`` inputs, e.g. ``(L,)`` for text or ``(H, W)`` for images.
        inputs_without_pos: the features before position encodings were added, for decoders that reuse them.
        modality_sizes: for multimodal inputs, how many of the ``N`` inputs each modality contributed.
        factored: ``inputs`` as separate features and positions, when they are a concatenation of the two (or,
            for several modalities, as segments of which some are); the encoder then cross-attends without
            projecting them where that is cheaper (:mod:`perceiverkit.layers.factored`).
    """

    inputs: Tensor
    index_dims: tuple[int, ...]
    inputs_without_pos: Tensor | None = None
    modality_sizes: dict[str, int] | None = None
    factored: FactoredInputs | SegmentedInputs | None = None

    @property
    def encoder_inputs(self) -> Tensor | FactoredInputs | SegmentedInputs:
        """What the encoder attends to: :attr:`factored` when set, else :attr:`inputs`."""
        return self.inputs if self.factored is None else self.factored

    @property
    def batch_size(self) -> int:
        return self.inputs.shape[0]
