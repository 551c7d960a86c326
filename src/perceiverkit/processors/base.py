"""What a preprocessor hands to the encoder and the decoder."""

from __future__ import annotations

from torch import Tensor

from ..layers.factored import FactoredInputs, SegmentedInputs


class Preprocessed:
    """A modality turned into an array of feature vectors.

    Attributes:
        inputs: ``(B, N, C)`` features the encoder attends to (positions included). When only :attr:`factored` was
            given, they are concatenated on first access: the encoder does not need them, so a model whose
            decoder does not read them never forms them.
        index_dims: the natural grid shape of the ``N`` inputs, e.g. ``(L,)`` for text or ``(H, W)`` for images.
        inputs_without_pos: the features before position encodings were added, for decoders that reuse them.
        modality_sizes: for multimodal inputs, how many of the ``N`` inputs each modality contributed.
        factored: ``inputs`` as separate features and positions, when they are a concatenation of the two (or,
            for several modalities, as segments of which some are); the encoder then cross-attends without
            projecting them where that is cheaper (:mod:`perceiverkit.layers.factored`).
    """

    def __init__(
        self,
        inputs: Tensor | None,
        index_dims: tuple[int, ...],
        inputs_without_pos: Tensor | None = None,
        modality_sizes: dict[str, int] | None = None,
        factored: FactoredInputs | SegmentedInputs | None = None,
    ) -> None:
        if inputs is None and factored is None:
            raise ValueError("Preprocessed needs the inputs, or a factored view of them")
        self._inputs = inputs
        self.index_dims = tuple(index_dims)
        self.inputs_without_pos = inputs_without_pos
        self.modality_sizes = modality_sizes
        self.factored = factored

    @property
    def inputs(self) -> Tensor:
        if self._inputs is None:
            assert self.factored is not None
            self._inputs = self.factored.materialize()
        return self._inputs

    def with_factored(self, factored: FactoredInputs | SegmentedInputs) -> Preprocessed:
        """The same inputs with another factored view of them (the concatenated inputs are kept if formed)."""
        return Preprocessed(self._inputs, self.index_dims, self.inputs_without_pos, self.modality_sizes, factored)

    @property
    def encoder_inputs(self) -> Tensor | FactoredInputs | SegmentedInputs:
        """What the encoder attends to: :attr:`factored` when set, else :attr:`inputs`."""
        return self.inputs if self.factored is None else self.factored

    @property
    def batch_size(self) -> int:
        return self.encoder_inputs.shape[0]

    def __repr__(self) -> str:
        shape = tuple(self.encoder_inputs.shape)
        view = "" if self.factored is None else f", factored={type(self.factored).__name__}"
        return f"Preprocessed(shape={shape}, index_dims={self.index_dims}{view})"
