"""Cross-attention decoders: queries from a position grid, from the inputs, or one learned query per example."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from ..config import DecoderConfig
from ..interfaces import DecoderOutput, Preprocessed
from ..layers.blocks import CrossAttentionBlock
from .queries import PositionQueries, check_points, gather_points


class CrossAttentionDecoder(nn.Module):
    """Output queries attend to the latents, followed by an optional final linear projection.

    This is the general Perceiver IO decoder ("basic decoder" in the paper's code). With
    ``config.queries=None`` it has no queries of its own and decodes whatever queries it is given.
    """

    def __init__(self, config: DecoderConfig, latent_channels: int, input_channels: int | None = None) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.queries = PositionQueries(config.queries, config.output_index_dims) if config.queries else None
        if self.queries is not None:
            expected = self.queries.num_channels
            if config.concat_preprocessed_input:
                if input_channels is None:
                    raise ValueError("concat_preprocessed_input needs the preprocessor's output width")
                expected += input_channels
            if expected != config.query_channels:
                raise ValueError(
                    f"decoder queries are {expected} channels wide but DecoderConfig.query_channels is "
                    f"{config.query_channels}"
                )
        qk = config.qk_channels or (latent_channels if config.cross_attention_shape_for_attention == "kv"
                                    else config.query_channels)
        self.cross_attention = CrossAttentionBlock(
            q_dim=config.query_channels,
            kv_dim=latent_channels,
            qk_channels=qk,
            v_channels=config.v_channels or qk,
            num_heads=config.num_heads,
            widening_factor=config.widening_factor,
            use_query_residual=config.use_query_residual,
            activation=config.activation,
            dropout=config.attention_dropout,
        )
        self.final_projection = (
            nn.Linear(config.query_channels, config.output_channels)  # type: ignore[arg-type]
            if config.final_project
            else nn.Identity()
        )

    @property
    def num_outputs(self) -> int:
        """Number of points in the output grid."""
        return math.prod(self.config.output_index_dims)

    def point_chunks(self, pre: Preprocessed, chunk_size: int) -> Iterator[Tensor]:
        """Flat output indices in chunks of at most ``chunk_size``, covering every output once."""
        yield from torch.arange(self.num_outputs, device=pre.device).split(chunk_size)

    def build_queries(
        self,
        pre: Preprocessed,
        points: Tensor | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Queries for every output point, or for the flat output indices ``points``."""
        if self.queries is None:
            raise ValueError("this decoder has no queries of its own; pass them to forward()")
        check_points(points, self.num_outputs)
        queries = self.queries(pre.batch_size, points, device=device, dtype=dtype)
        if self.config.concat_preprocessed_input:
            inputs_without_pos = pre.inputs_without_pos
            if inputs_without_pos is None:
                raise ValueError("concat_preprocessed_input needs the preprocessed inputs without positions")
            if points is not None:
                inputs_without_pos = gather_points(inputs_without_pos, points)
            queries = torch.cat([inputs_without_pos, queries.to(inputs_without_pos.dtype)], dim=-1)
        return queries

    def forward(self, queries: Tensor, latents: Tensor, output_attentions: bool = False) -> DecoderOutput:
        """Decode ``queries`` ``(B, Q, query_channels)`` against ``latents``; returns ``(B, Q, out_channels)``."""
        return DecoderOutput(*self._decode(queries, latents, output_attentions))

    def _decode(
        self, queries: Tensor, latents: Tensor, output_attentions: bool
    ) -> tuple[Tensor, tuple[Tensor, ...] | None]:
        # Returns the plain tensor (not a DecoderOutput, whose output may be a dict) so subclasses can reshape it.
        if queries.shape[-1] != self.config.query_channels:
            raise ValueError(
                f"decoder expects queries with {self.config.query_channels} channels, got {tuple(queries.shape)}"
            )
        out, weights = self.cross_attention(queries.to(latents.dtype), latents, need_weights=output_attentions)
        return self.final_projection(out), (weights,) if weights is not None else None  # (B, Q, out_channels)


class ClassificationDecoder(CrossAttentionDecoder):
    """A single learned query decodes one logit vector per example: output ``(B, num_classes)``."""

    def forward(self, queries: Tensor, latents: Tensor, output_attentions: bool = False) -> DecoderOutput:
        output, weights = self._decode(queries, latents, output_attentions)
        return DecoderOutput(output[:, 0, :], weights)


class ProjectionDecoder(nn.Module):
    """Baseline without cross-attention: mean of the latents, then a linear layer. Output ``(B, C)``."""

    num_outputs = 1

    def __init__(self, latent_channels: int, output_channels: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(latent_channels, output_channels)

    def point_chunks(self, pre: Preprocessed, chunk_size: int) -> Iterator[None]:
        yield None

    def build_queries(self, pre: Preprocessed, *args: object, **kwargs: object) -> None:
        return None

    def forward(self, queries: None, latents: Tensor, output_attentions: bool = False) -> DecoderOutput:
        return DecoderOutput(self.classifier(latents.mean(dim=1)))


class InputQueryDecoder(CrossAttentionDecoder):
    """Decodes one output per input: the preprocessed inputs themselves (positions included) are the queries.

    Used for dense prediction on the input grid, e.g. optical flow. Outputs are divided by ``rescale_factor``,
    the published models' output scaling.
    """

    def __init__(self, config: DecoderConfig, latent_channels: int, rescale_factor: float = 1.0) -> None:
        if config.queries is not None:
            raise ValueError("InputQueryDecoder takes its queries from the inputs; set DecoderConfig.queries=None")
        super().__init__(config, latent_channels)
        self.rescale_factor = rescale_factor

    def point_chunks(self, pre: Preprocessed, chunk_size: int) -> Iterator[Tensor]:
        yield from torch.arange(pre.inputs.shape[1], device=pre.device).split(chunk_size)

    def build_queries(
        self,
        pre: Preprocessed,
        points: Tensor | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        check_points(points, pre.inputs.shape[1])
        return pre.inputs if points is None else gather_points(pre.inputs, points)

    def forward(self, queries: Tensor, latents: Tensor, output_attentions: bool = False) -> DecoderOutput:
        output, weights = self._decode(queries, latents, output_attentions)
        return DecoderOutput(output / self.rescale_factor, weights)
