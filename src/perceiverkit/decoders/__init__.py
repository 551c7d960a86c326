"""Decoders: output queries cross-attend to the latents.

A decoder has two jobs, kept apart so that they can be mixed: *building queries* (from a position encoding of
the output grid, from the inputs, or per modality) and *decoding* them against the latents. Decoding only the
queries at chosen ``output_points`` (flat indices into the output grid) is how training skips outputs it does
not score and how large outputs are decoded chunk by chunk from cached latents (``point_chunks``).
"""

from .cross_attention import (
    ClassificationDecoder,
    CrossAttentionDecoder,
    DecoderOutput,
    InputQueryDecoder,
    ProjectionDecoder,
)
from .multimodal import ModalityPoints, ModalityQueries, MultimodalDecoder, multimodal_query_channels
from .queries import PositionQueries, check_points, gather_points

__all__ = [
    "ClassificationDecoder",
    "CrossAttentionDecoder",
    "DecoderOutput",
    "InputQueryDecoder",
    "ModalityPoints",
    "ModalityQueries",
    "MultimodalDecoder",
    "PositionQueries",
    "ProjectionDecoder",
    "check_points",
    "gather_points",
    "multimodal_query_channels",
]
