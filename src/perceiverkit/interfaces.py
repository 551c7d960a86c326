"""What the four stages of a Perceiver IO model hand each other, and the interfaces of the stages.

``inputs ──► Preprocessor ──► Preprocessed ──► encoder ──► Encoded ──► Decoder(queries) ──► Postprocessor``

Any object with these methods fits (they are :class:`typing.Protocol`\\ s, checked by shape, not by base class), so
a new modality needs no base class from this library: a preprocessor returning :class:`Preprocessed`, a decoder
with ``build_queries`` / ``point_chunks`` / ``forward`` and optionally a postprocessor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from .accel import InputView

#: Which outputs to decode: flat indices into the output grid, a dict of them by modality (``None``: all of that
#: modality), or ``None`` for every output.
OutputPoints = Tensor | Mapping[str, Tensor | None] | None


class Preprocessed:
    """A modality turned into an array of feature vectors.

    Attributes:
        inputs: ``(B, N, C)`` features the encoder attends to (positions included).
        index_dims: the natural grid shape of the ``N`` inputs, e.g. ``(L,)`` for text or ``(H, W)`` for images.
        inputs_without_pos: the features before position encodings were added, for decoders that reuse them.
        modality_sizes: for multimodal inputs, how many of the ``N`` inputs each modality contributed.

    A preprocessor whose inputs have a faster view (:data:`perceiverkit.accel.InputView`: features and positions
    kept apart, or several modalities as segments) builds this with :meth:`from_view`; :attr:`inputs` is then
    concatenated on first access. The encoder reads :attr:`encoder_inputs` and does not need the concatenation,
    so a model whose decoder does not read :attr:`inputs` never forms them.
    """

    def __init__(
        self,
        inputs: Tensor,
        index_dims: tuple[int, ...],
        inputs_without_pos: Tensor | None = None,
        modality_sizes: dict[str, int] | None = None,
    ) -> None:
        self._inputs: Tensor | None = inputs
        self.index_dims = tuple(index_dims)
        self.inputs_without_pos = inputs_without_pos
        self.modality_sizes = modality_sizes
        self.view: InputView | None = None

    @classmethod
    def from_view(
        cls,
        view: InputView,
        index_dims: tuple[int, ...],
        inputs_without_pos: Tensor | None = None,
        modality_sizes: dict[str, int] | None = None,
    ) -> Preprocessed:
        """Inputs given by a faster view of them; the ``(B, N, C)`` tensor is formed only if read."""
        pre = cls(None, index_dims, inputs_without_pos, modality_sizes)  # type: ignore[arg-type]  # formed lazily
        pre.view = view
        return pre

    @property
    def inputs(self) -> Tensor:
        if self._inputs is None:
            assert self.view is not None
            self._inputs = self.view.materialize()
        return self._inputs

    def with_view(self, view: InputView) -> Preprocessed:
        """The same inputs with another view of them (the concatenated inputs are kept if already formed)."""
        pre = Preprocessed.from_view(view, self.index_dims, self.inputs_without_pos, self.modality_sizes)
        pre._inputs = self._inputs
        return pre

    @property
    def encoder_inputs(self) -> Tensor | InputView:
        """What the encoder attends to: the view when there is one, else :attr:`inputs`."""
        return self.inputs if self.view is None else self.view

    @property
    def batch_size(self) -> int:
        return self.encoder_inputs.shape[0]

    @property
    def device(self) -> torch.device:
        return self.encoder_inputs.device

    def __repr__(self) -> str:
        shape = tuple(self.encoder_inputs.shape)
        view = "" if self.view is None else f", view={type(self.view).__name__}"
        return f"Preprocessed(shape={shape}, index_dims={self.index_dims}{view})"


@dataclass
class Encoded:
    """The result of :meth:`PerceiverIO.encode <perceiverkit.model.PerceiverIO.encode>`: latents plus what the
    decoder may need from the inputs."""

    latents: Tensor
    preprocessed: Preprocessed
    cross_attentions: tuple[Tensor, ...] | None = None
    self_attentions: tuple[Tensor, ...] | None = None
    hidden_states: tuple[Tensor, ...] | None = None


@dataclass
class DecoderOutput:
    """Decoded array ``(B, Q, C)`` (``(B, C)`` for classification; a dict by modality for multimodal decoders)
    and optional attention weights."""

    output: Tensor | dict[str, Tensor]
    cross_attentions: tuple[Tensor, ...] | None = None


# The stages are called (an nn.Module's __call__ runs its forward with hooks), so each protocol names __call__;
# Decoder also names forward, build_queries and point_chunks, which the model calls by name.


@runtime_checkable
class Preprocessor(Protocol):
    """Raw inputs of a modality (token ids, pixels, audio, a dict of modalities) → :class:`Preprocessed`.

    Called as ``preprocessor(inputs, **options)``; options such as ``interpolate_pos_encoding`` differ by modality.
    """

    @property
    def num_channels(self) -> int:
        """``C``, the width of the feature vectors it produces."""
        ...

    __call__: Callable[..., Preprocessed]


@runtime_checkable
class Decoder(Protocol):
    """Builds output queries and decodes them against the latents.

    ``points`` selects outputs: flat indices into the output grid (a dict by modality for multimodal decoders),
    ``None`` for all of them. Called as ``decoder(queries, latents, output_attentions=...)``, which runs
    :meth:`forward`.
    """

    # ``points`` and ``queries`` are Any, not a union: each decoder accepts only its own kind (a tensor of indices,
    # a dict by modality, ``None``), and a narrower parameter would not satisfy a wider protocol.
    def build_queries(self, pre: Preprocessed, points: Any = None, device: torch.device | None = None,
                      dtype: torch.dtype = torch.float32) -> object:
        """The queries for ``points`` (``None`` for decoders that need none); the model only hands them back to
        :meth:`forward`."""
        ...

    def point_chunks(self, pre: Preprocessed, chunk_size: int) -> Iterator[OutputPoints]:
        """``points`` arguments that together cover every output once, at most ``chunk_size`` each."""
        ...

    def forward(self, queries: Any, latents: Tensor, output_attentions: bool = False) -> DecoderOutput:
        """Decode ``queries`` against ``latents`` ``(B, num_latents, d_latents)``."""
        ...

    __call__: Callable[..., DecoderOutput]


@runtime_checkable
class Postprocessor(Protocol):
    """The decoder's output (a tensor, or a dict by modality) → the task's output; called as
    ``postprocessor(decoded)``."""

    __call__: Callable[..., Tensor | dict[str, Tensor]]
