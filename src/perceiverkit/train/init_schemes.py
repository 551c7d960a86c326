"""Starting points for training from scratch that help a Perceiver find positional structure sooner.

A Perceiver reads its inputs through a content-addressed cross-attention, so at initialisation every latent
sees a random mixture of all positions and every output query reads a random mixture of latents. A byte-level
MLM then sits at the unigram loss until latents specialise on neighbourhoods of positions (thousands of steps
on small models). These schemes change only initial values, never the architecture or checkpoint format.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ..config import ConfigError
from ..layers.position import TrainablePositionEncoding
from ..processors.text import TextPreprocessor


def sinusoid_table(length: int, channels: int) -> torch.Tensor:
    """``(length, channels)`` sine/cosine waves of geometrically spaced wavelengths (unit RMS)."""
    position = torch.arange(length, dtype=torch.float64)[:, None]
    frequency = torch.exp(-math.log(10000.0) * torch.arange(0, channels, 2, dtype=torch.float64) / channels)
    table = torch.zeros(length, channels, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : channels // 2]
    return (table * math.sqrt(2.0)).float()


def sinusoidal_position_init(model: nn.Module) -> int:
    """Re-initialise every learned 1-D position table with :func:`sinusoid_table`, keeping each table's RMS.

    Nearby positions then start out similar. Returns how many tables were changed; grids of two or more
    dimensions keep their initialisation.
    """
    changed = 0
    with torch.no_grad():
        for module in model.modules():
            table: torch.Tensor
            if isinstance(module, TrainablePositionEncoding) and len(module.index_dims) == 1:
                table = module.embeddings
            elif isinstance(module, TextPreprocessor):
                table = module.position_embedding.weight
            else:
                continue
            rms = table.pow(2).mean().sqrt()
            table.copy_(sinusoid_table(*table.shape) * rms)
            changed += 1
    return changed


def local_attention_init(model: nn.Module, sharpness: float = 3.0, token_scale: float = 0.5) -> None:
    """Start a byte-level MLM with local cross-attention: latent ``i`` gathers the positions around
    ``i × length / num_latents`` and the output query for position ``p`` reads the latents around ``p``.

    Positions, output queries and latents get the same unit-RMS sinusoid table (latents at evenly spaced
    positions), each cross-attention's key projection starts equal to its query projection (scaled by
    ``sharpness``), so that attention scores start as similarities of positions; token embeddings are scaled
    to RMS ``token_scale`` so that positions dominate the first attention patterns while bytes still come
    through. Requires equal input, latent and query widths (``d_model == d_latents``).
    """
    from ..decoders import CrossAttentionDecoder
    from ..tasks.text import MaskedLanguageModel

    if not isinstance(model, MaskedLanguageModel):
        raise ConfigError(f"position_init 'local' is for masked-lm models, got a {type(model).__name__}")
    perceiver = model.perceiver
    # A masked-lm model is built from these parts; checking them also tells the type checker what it holds.
    preprocessor, encoder, decoder = perceiver.preprocessor, perceiver.encoder, perceiver.decoder
    if not isinstance(preprocessor, TextPreprocessor):
        raise ConfigError(f"position_init 'local' needs a TextPreprocessor, got a {type(preprocessor).__name__}")
    if not isinstance(decoder, CrossAttentionDecoder) or decoder.queries is None:
        raise ConfigError(f"position_init 'local' needs a CrossAttentionDecoder with queries, got a "
                          f"{type(decoder).__name__}")
    queries = decoder.queries.encoding
    if not isinstance(queries, TrainablePositionEncoding):
        raise ConfigError(f"position_init 'local' needs trainable output queries, got a {type(queries).__name__}")
    length, width = preprocessor.position_embedding.weight.shape
    latents = encoder.latents
    if latents.shape[1] != width:
        raise ConfigError(f"position_init 'local' needs d_latents == d_model, got {latents.shape[1]} and {width}")
    table = sinusoid_table(length, width)
    with torch.no_grad():
        preprocessor.position_embedding.weight.copy_(table)
        tokens = preprocessor.token_embedding.weight
        tokens.mul_(token_scale / tokens.pow(2).mean().sqrt())
        queries.embeddings.copy_(table)
        latents.copy_(table[torch.arange(latents.shape[0]) * length // latents.shape[0]])
        for attention in (encoder.cross_attention.attention, decoder.cross_attention.attention):
            attention.q_proj.weight.mul_(sharpness)
            attention.kv_proj.weight[: attention.qk_channels].copy_(attention.q_proj.weight)


#: ``ModelSpec.position_init`` choices besides ``"random"`` (the models' own initialisation).
POSITION_INITS: dict[str, Callable[[nn.Module], object]] = {
    "sinusoidal": sinusoidal_position_init,
    "local": local_attention_init,
}
