"""The Perceiver encoder: a learned latent array reads the inputs once, then thinks in latent space.

Cost is linear in the number of inputs ``N`` (one ``num_latents × N`` cross-attention) and independent of it
for the self-attention stack, whose weights are shared across the ``num_blocks`` repetitions.

The cross-attention block may leave the reference path (inputs kept factored, several modalities, chunked
inputs) through the one dispatch that :mod:`perceiverkit.accel.cross_attention` installs into it; everything else
is the reference blocks of :mod:`perceiverkit.layers`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .accel import InputView, check_chunk_size
from .config import EncoderConfig
from .layers.blocks import CrossAttentionBlock, SelfAttentionBlock


def _check_heads(role: str, num_heads: int, **widths: int) -> None:
    for name, width in widths.items():
        if width % num_heads:
            raise ValueError(f"{role}: {name} ({width}) must be divisible by its number of heads ({num_heads})")


@dataclass
class EncoderOutput:
    """Latents ``(B, num_latents, d_latents)`` and, when requested, attention weights and hidden states."""

    latents: Tensor
    cross_attentions: tuple[Tensor, ...] | None = None
    self_attentions: tuple[Tensor, ...] | None = None
    hidden_states: tuple[Tensor, ...] | None = None


class PerceiverEncoder(nn.Module):
    """Latents + one cross-attention to ``input_channels``-wide inputs + a shared self-attention stack."""

    #: Initialised like embeddings by :func:`~perceiverkit.layers.init.init_weights`.
    learned_arrays = ("latents",)

    def __init__(self, config: EncoderConfig, input_channels: int) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.input_channels = input_channels
        d = config.d_latents
        cross_qk = config.qk_channels or (input_channels if config.cross_attention_shape_for_attention == "kv" else d)
        self_qk = config.qk_channels or d
        cross_v, self_v = config.v_channels or cross_qk, config.v_channels or self_qk
        _check_heads(
            "encoder cross-attention", config.num_cross_attention_heads, qk_channels=cross_qk, v_channels=cross_v
        )
        _check_heads("encoder self-attention", config.num_self_attention_heads, qk_channels=self_qk, v_channels=self_v)
        self.latents = nn.Parameter(torch.randn(config.num_latents, d) * 0.02)
        self.cross_attention = CrossAttentionBlock(
            q_dim=d,
            kv_dim=input_channels,
            qk_channels=cross_qk,
            v_channels=cross_v,
            num_heads=config.num_cross_attention_heads,
            widening_factor=config.cross_attention_widening_factor,
            use_query_residual=config.use_query_residual,
            activation=config.activation,
            dropout=config.attention_dropout,
        )
        self.self_attention = nn.ModuleList(
            SelfAttentionBlock(
                dim=d,
                qk_channels=self_qk,
                v_channels=self_v,
                num_heads=config.num_self_attention_heads,
                widening_factor=config.self_attention_widening_factor,
                activation=config.activation,
                dropout=config.attention_dropout,
            )
            for _ in range(config.num_self_attends_per_block)
        )
        #: Recompute self-attention activations in the backward pass instead of storing them.
        self.gradient_checkpointing = False
        #: Under autocast, carry the latents through the self-attention stack in the autocast dtype (bf16/fp16)
        #: instead of float32; see :meth:`forward`.
        self.half_precision_latents = False
        self._input_chunk_size: int | None = None

    @property
    def input_chunk_size(self) -> int | None:
        """Cross-attend to at most this many inputs at a time; ``None`` (default) attends to all at once.

        A runtime setting, not part of the architecture: the output is the same up to float rounding, but when
        ``N`` exceeds it the inputs are layer-normed, projected and attended to one chunk at a time with an online
        softmax (:mod:`perceiverkit.accel.chunked`), so cross-attention memory is bounded by the chunk instead of
        growing with the number of inputs; with gradients, each chunk is recomputed in the backward pass. Calls
        that ask for the attention weights attend to all inputs at once (the weights themselves are ``M × N``).
        """
        return self._input_chunk_size

    @input_chunk_size.setter
    def input_chunk_size(self, value: int | None) -> None:
        self._input_chunk_size = check_chunk_size(value, "input_chunk_size")

    def forward(
        self,
        inputs: Tensor | InputView,
        mask: Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> EncoderOutput:
        """Encode ``inputs`` ``(B, N, input_channels)``; ``mask`` ``(B, N)`` is ``True`` for real inputs.

        ``inputs`` may also be a faster view of such a tensor (:data:`perceiverkit.accel.InputView`, what
        :attr:`Preprocessed.encoder_inputs <perceiverkit.interfaces.Preprocessed.encoder_inputs>` gives for image
        and multimodal inputs); the cross-attention then concatenates it only if it takes the reference path.

        With :attr:`half_precision_latents` set and autocast on, the latents leave the cross-attention in the
        autocast dtype, so the residual stream of the self-attention stack (its sums, the LayerNorm inputs and
        what is kept for the backward pass) is half the bytes; autocast still runs LayerNorm and softmax in
        float32. The latents returned (and the decoder's keys) are cast back to float32. Without the setting the
        residual stream stays float32 under autocast, as in Transformers, and the two differ by the rounding of
        that stream (about 1e-2 relative in bf16). Without autocast the setting does nothing.
        """
        if len(inputs.shape) != 3 or inputs.shape[-1] != self.input_channels:
            raise ValueError(
                f"encoder expects inputs of shape (batch, index, {self.input_channels}), got {tuple(inputs.shape)}"
            )
        latents = self.latents.to(inputs.dtype).expand(inputs.shape[0], -1, -1)
        latents, cross_weights = self.cross_attention(latents, inputs, mask, output_attentions,
                                                      self._input_chunk_size)  # (B, num_latents, d_latents)
        stream_dtype = latents.dtype
        if self.half_precision_latents and torch.is_autocast_enabled(latents.device.type):
            latents = latents.to(torch.get_autocast_dtype(latents.device.type))
        self_weights: list[Tensor] = []
        hidden: list[Tensor] = []
        for _ in range(self.config.num_blocks):
            for layer in self.self_attention:
                if output_hidden_states:
                    hidden.append(latents)
                if self.gradient_checkpointing and self.training and not output_attentions:
                    latents = checkpoint(lambda z, layer=layer: layer(z)[0], latents, use_reentrant=False)
                else:
                    latents, weights = layer(latents, need_weights=output_attentions)
                    if weights is not None:
                        self_weights.append(weights)
            if output_hidden_states:
                hidden.append(latents)
        return EncoderOutput(
            latents=latents.to(stream_dtype),
            cross_attentions=(cross_weights,) if cross_weights is not None else None,
            self_attentions=tuple(self_weights) if output_attentions else None,
            hidden_states=tuple(hidden) if output_hidden_states else None,
        )
