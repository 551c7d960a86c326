"""PerceiverIO: preprocessor → encoder → decoder(queries) → postprocessor.

The generic model that every task model is assembled from, and the way to build a model for a new modality:
give it any preprocessor that returns :class:`~perceiverkit.processors.Preprocessed` (or none, and pass
``(B, N, C)`` arrays), an encoder, a decoder, and optionally a postprocessor.

Encoding and decoding are separate calls so that the latents can be computed once and decoded many times,
e.g. chunk by chunk over a large output (see :meth:`PerceiverIO.encode` / :meth:`PerceiverIO.decode`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .encoder import PerceiverEncoder
from .interfaces import Decoder, Encoded, OutputPoints, Postprocessor, Preprocessed, Preprocessor

__all__ = ["Encoded", "PerceiverIO", "PerceiverOutput"]


@dataclass
class PerceiverOutput:
    """Model output. ``logits`` is the decoded (and postprocessed) output.

    It indexes like Transformers' ``ModelOutput``: by name (``output["logits"]``) or by position among the
    fields that are set, in Transformers' order, which puts ``loss`` first: ``output[0]`` is the logits, or the
    loss when labels were given. A field that is ``None`` has no key and no position.
    """

    logits: Tensor | dict[str, Tensor]  # a tensor, or a dict of tensors by modality
    last_hidden_state: Tensor | None = None
    loss: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None
    cross_attentions: tuple[Tensor, ...] | None = None

    def keys(self) -> list[str]:
        """The names of the fields that are set, ``loss`` first, then the declaration order (Transformers')."""
        names = [f.name for f in dataclasses.fields(self)]
        ordered = ["loss", *(name for name in names if name != "loss")]
        return [name for name in ordered if getattr(self, name) is not None]

    def to_tuple(self) -> tuple[Tensor | dict[str, Tensor] | tuple[Tensor, ...], ...]:
        """The values of :meth:`keys`, in order."""
        return tuple(getattr(self, name) for name in self.keys())

    def __getitem__(self, key: str | int | slice) -> Any:  # Any: a field, or a tuple of them for a slice
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(key)  # as Transformers: an unset field has no key
            return getattr(self, key)
        return self.to_tuple()[key]


def _as_key_mask(mask: Tensor | None, batch: int, length: int) -> Tensor | None:
    """Validate a ``(B, N)`` padding mask (1/True = real input) and return it as booleans."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"attention_mask must be a torch.Tensor, got {type(mask).__name__}")
    if tuple(mask.shape) != (batch, length):
        raise ValueError(f"attention_mask must have shape ({batch}, {length}) like the inputs, got {tuple(mask.shape)}")
    if mask.dtype == torch.bool:
        return mask
    if mask.dtype.is_floating_point or mask.dtype.is_complex:
        raise TypeError(f"attention_mask must hold 0/1 integers or booleans, got dtype {mask.dtype}")
    return mask != 0


def _check_finite(inputs: object, name: str = "inputs") -> None:
    if isinstance(inputs, Mapping):
        for key, value in inputs.items():
            _check_finite(value, f"{name}[{key!r}]")
    elif isinstance(inputs, Tensor) and inputs.dtype.is_floating_point:
        if torch.compiler.is_compiling():
            # bool(tensor) cannot be traced: assert inside the graph instead (raises when the graph runs)
            torch._assert_async(
                torch.isfinite(inputs).all(), f"{name} contain NaN or infinite values; expected finite numbers"
            )
        elif not bool(torch.isfinite(inputs).all()):
            bad = int((~torch.isfinite(inputs)).sum())
            raise ValueError(f"{name} contain {bad} NaN or infinite value(s); expected finite numbers")


def _to_compute_dtype(inputs: Tensor | Mapping[str, Tensor], dtype: torch.dtype) -> Tensor | Mapping[str, Tensor]:
    """Floating-point input tensors (also inside a dict of modalities) cast to ``dtype``; ids and masks as they
    are. Under autocast nothing is cast: autocast chooses each operation's precision itself."""
    if isinstance(inputs, Mapping):
        return {key: _tensor_to_compute_dtype(value, dtype) for key, value in inputs.items()}
    return _tensor_to_compute_dtype(inputs, dtype)


def _tensor_to_compute_dtype(tensor: Tensor, dtype: torch.dtype) -> Tensor:
    if isinstance(tensor, Tensor) and tensor.dtype.is_floating_point and tensor.dtype != dtype \
            and not torch.is_autocast_enabled(tensor.device.type):
        return tensor.to(dtype)
    return tensor  # ids, masks, or a value the preprocessor will reject with its own message


def _concat_outputs(pieces: Sequence[Tensor | Mapping[str, Tensor]]) -> Tensor | dict[str, Tensor]:
    """Join chunked outputs along the point axis; dict outputs per key (a key decoded once stays as it is)."""
    tensors = [piece for piece in pieces if isinstance(piece, Tensor)]
    if tensors:
        return tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim=1)
    by_name: dict[str, list[Tensor]] = {}
    for piece in pieces:
        if isinstance(piece, Mapping):
            for name, value in piece.items():
                by_name.setdefault(name, []).append(value)
    return {name: values[0] if len(values) == 1 else torch.cat(values, dim=1) for name, values in by_name.items()}


class PerceiverIO(nn.Module):
    """A Perceiver IO model from its four parts.

    Args:
        encoder: the latent encoder.
        decoder: a :class:`~perceiverkit.interfaces.Decoder` (``build_queries``, ``point_chunks``, ``forward``;
            see ``decoders``), usually an ``nn.Module``.
        preprocessor: a :class:`~perceiverkit.interfaces.Preprocessor`, mapping raw inputs to
            :class:`Preprocessed`; ``None`` means inputs are already ``(B, N, C)``.
        postprocessor: a :class:`~perceiverkit.interfaces.Postprocessor`, mapping the decoder's output to the
            task's output; ``None`` returns it unchanged.
    """

    def __init__(
        self,
        encoder: PerceiverEncoder,
        decoder: Decoder,
        preprocessor: Preprocessor | None = None,
        postprocessor: Postprocessor | None = None,
    ) -> None:
        super().__init__()
        self.preprocessor = preprocessor
        self.encoder = encoder
        self.decoder = decoder
        self.postprocessor = postprocessor
        #: Opt-in check that raw inputs hold no NaN or infinity (costs a pass over the inputs).
        self.check_finite = False

    def set_input_chunk_size(self, n: int | None) -> PerceiverIO:
        """Make the encoder cross-attend to at most ``n`` inputs at a time (``None``: all at once, the default).

        Outputs are unchanged up to float rounding; the encoder's cross-attention memory is then bounded by ``n``
        instead of growing with the number of inputs, for inference and (with per-chunk recomputation) training.
        The decoder needs no such setting: its keys are the latents, which are few; decode many outputs in chunks
        with :meth:`decode_chunked`. Returns the model, for chaining.

        Raises:
            ValueError: if ``n`` is not a positive integer or ``None``.
        """
        self.encoder.input_chunk_size = n
        return self

    def preprocess(self, inputs: Tensor | Mapping[str, Tensor], **kwargs: Any) -> Preprocessed:
        """Run the preprocessor; ``kwargs`` go to it (e.g. ``interpolate_pos_encoding`` for images)."""
        if self.preprocessor is not None:
            return self.preprocessor(inputs, **kwargs)
        if not isinstance(inputs, Tensor) or inputs.dim() != 3:
            shape = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
            raise ValueError(f"without a preprocessor, inputs must be a (batch, index, channels) tensor, got {shape}")
        return Preprocessed(inputs=inputs, index_dims=(inputs.shape[1],), inputs_without_pos=inputs)

    def encode(
        self,
        inputs: Tensor | Mapping[str, Tensor],
        attention_mask: Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        **preprocess_kwargs: Any,
    ) -> Encoded:
        """Preprocess and encode ``inputs`` into latents. ``attention_mask`` marks real (non-padding) inputs."""
        if self.check_finite:
            _check_finite(inputs)
        # A model cast to half precision (``model.to(torch.bfloat16)``) takes float32 pixels, audio and frames as
        # they come; position features are still computed in float32 and rounded once.
        pre = self.preprocess(_to_compute_dtype(inputs, self.encoder.latents.dtype), **preprocess_kwargs)
        batch, length = pre.encoder_inputs.shape[:2]
        mask = _as_key_mask(attention_mask, batch, length)
        out = self.encoder(pre.encoder_inputs, mask, output_attentions, output_hidden_states)
        return Encoded(out.latents, pre, out.cross_attentions, out.self_attentions, out.hidden_states)

    def decode(
        self,
        encoded: Encoded,
        output_points: OutputPoints = None,
        queries: object = None,
        output_attentions: bool = False,
    ) -> tuple[Tensor | dict[str, Tensor], tuple[Tensor, ...] | None]:
        """Decode cached latents at the flat output indices ``output_points`` (all outputs when ``None``; a dict
        by modality for multimodal decoders), or decode explicit ``queries``. Returns the postprocessed output and
        the decoder's attention weights."""
        pre = encoded.preprocessed
        if queries is None:
            queries = self.decoder.build_queries(
                pre, output_points, device=encoded.latents.device, dtype=encoded.latents.dtype
            )
        decoded = self.decoder(queries, encoded.latents, output_attentions=output_attentions)
        output = decoded.output
        if self.postprocessor is not None:
            output = self.postprocessor(output)
        return output, decoded.cross_attentions

    @torch.no_grad()
    def decode_chunked(
        self, encoded: Encoded, chunk_size: int = 16384, progress: Callable[[int, int], None] | None = None
    ) -> Tensor | dict[str, Tensor]:
        """Decode every output from cached latents, ``chunk_size`` queries at a time, so that memory is bounded
        by the chunk size, not the output size. Outputs equal :meth:`decode` at the same points.
        ``progress(done, total)`` is called after each chunk."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        chunks = list(self.decoder.point_chunks(encoded.preprocessed, chunk_size))
        pieces = []
        for i, points in enumerate(chunks):
            pieces.append(self.decode(encoded, points)[0])
            if progress is not None:
                progress(i + 1, len(chunks))
        return _concat_outputs(pieces)

    def forward(
        self,
        inputs: Tensor | Mapping[str, Tensor],
        attention_mask: Tensor | None = None,
        output_points: OutputPoints = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        **preprocess_kwargs: Any,
    ) -> PerceiverOutput:
        encoded = self.encode(inputs, attention_mask, output_attentions, output_hidden_states, **preprocess_kwargs)
        logits, decoder_attentions = self.decode(encoded, output_points, output_attentions=output_attentions)
        cross = None
        if output_attentions:
            cross = (encoded.cross_attentions or ()) + (decoder_attentions or ())
        return PerceiverOutput(
            logits=logits,
            last_hidden_state=encoded.latents,
            hidden_states=encoded.hidden_states,
            attentions=encoded.self_attentions,
            cross_attentions=cross,
        )
