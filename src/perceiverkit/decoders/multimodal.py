"""Decoding several modalities with one cross-attention.

Each modality contributes queries (e.g. Fourier positions of video pixels, of audio patches, one learned label
query), padded with a learned modality vector to a common width; one cross-attention decodes all of them and
the result is split back by modality. Any set of modality names works.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import DecoderConfig
from ..interfaces import DecoderOutput, Preprocessed
from .cross_attention import CrossAttentionDecoder
from .queries import PositionQueries, check_points

#: Output points by modality: ``None`` (or a missing name) = every point, an empty tensor = skip the modality.
ModalityPoints = Mapping[str, Tensor | None]


@dataclass
class ModalityQueries:
    """Queries of several modalities concatenated along the index axis, with each one's count."""

    queries: Tensor
    sizes: dict[str, int]


def multimodal_query_channels(queries: Mapping[str, PositionQueries], min_padding_size: int) -> int:
    """The common query width: the widest modality's queries plus at least ``min_padding_size`` padding."""
    return max(q.num_channels for q in queries.values()) + min_padding_size


class MultimodalDecoder(nn.Module):
    """One cross-attention decoder over the padded, concatenated queries of every modality.

    Args:
        queries: per-modality query builders; modalities are always processed in sorted name order.
        config: the shared decoder (``queries=None``; ``query_channels`` must be the common width).
        latent_channels: width of the latents.
        min_padding_size: padding channels added to the widest modality's queries.
    """

    def __init__(
        self, queries: Mapping[str, PositionQueries], config: DecoderConfig, latent_channels: int,
        min_padding_size: int = 2,
    ) -> None:
        super().__init__()
        if not queries:
            raise ValueError("a multimodal decoder needs at least one modality")
        width = multimodal_query_channels(queries, min_padding_size)
        if config.query_channels != width:
            raise ValueError(f"multimodal queries are {width} channels wide but DecoderConfig.query_channels is "
                             f"{config.query_channels}")
        self.names = sorted(queries)
        self.queries = nn.ModuleDict(queries)
        # Plain ints: a ModuleDict's items are typed as any Module, and the grids are fixed at construction.
        self.points_per_modality = {name: q.num_points for name, q in queries.items()}
        self.padding = nn.ParameterDict(
            {name: nn.Parameter(torch.randn(1, width - q.num_channels) * 0.02) for name, q in queries.items()}
        )
        self.decoder = CrossAttentionDecoder(config, latent_channels)

    def _points(self, points: ModalityPoints | None) -> dict[str, Tensor | None]:
        points = dict(points or {})
        unknown = sorted(set(points) - set(self.names))
        if unknown:
            raise ValueError(f"unknown modalities {unknown} in output points; this decoder has {self.names}")
        return {name: points.get(name) for name in self.names}

    def point_chunks(self, pre: Preprocessed, chunk_size: int) -> Iterator[dict[str, Tensor]]:
        """Every output point of every modality, one modality at a time, in chunks of at most ``chunk_size``."""
        device = pre.device
        empty = torch.empty(0, dtype=torch.long, device=device)
        for name in self.names:
            for chunk in torch.arange(self.points_per_modality[name], device=device).split(chunk_size):
                yield {other: chunk if other == name else empty for other in self.names}

    def build_queries(
        self,
        pre: Preprocessed,
        points: ModalityPoints | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> ModalityQueries:
        parts, sizes = [], {}
        for name, selected in self._points(points).items():
            if selected is not None and selected.numel() == 0:
                continue
            builder = self.queries[name]
            check_points(selected, self.points_per_modality[name])
            q = builder(pre.batch_size, selected, device=device, dtype=dtype)
            pad = self.padding[name].to(q.dtype).expand(q.shape[0], q.shape[1], -1)
            parts.append(torch.cat([q, pad], dim=-1))
            sizes[name] = q.shape[1]
        if not parts:
            raise ValueError("no output points selected for any modality")
        return ModalityQueries(torch.cat(parts, dim=1), sizes)

    def forward(self, queries: ModalityQueries, latents: Tensor, output_attentions: bool = False) -> DecoderOutput:
        decoded = self.decoder(queries.queries, latents, output_attentions)
        assert isinstance(decoded.output, Tensor)
        split = decoded.output.split(list(queries.sizes.values()), dim=1)
        return DecoderOutput(dict(zip(queries.sizes, split, strict=True)), decoded.cross_attentions)
