"""Causal language modelling with Perceiver AR (Hawthorne et al., 2022): a long context read through a latent
bottleneck, one byte at a time.

The model keeps Perceiver IO's shape: a wide input array, one cross-attention into a short latent array, a stack
of self-attentions on the latents. What makes it autoregressive is where the latents come from and what they may
see:

1. every position of the input gets a token embedding, with learned absolute positions added, or with rotary
   positions applied to the attention's queries and keys (:func:`~perceiverkit.layers.position.apply_rotary`);
2. the latents are the last ``num_latents`` positions themselves (their embeddings are the cross-attention's
   queries); latent ``i`` at position ``p`` cross-attends causally to the whole input up to ``p`` (the prefix and
   the latents before it). In training a fraction of the prefix can be left out (the paper's prefix dropout);
3. a causal self-attention stack runs on the latents (latent ``i`` sees latents ``≤ i``);
4. a final LayerNorm and the output head (tied to the token embedding, or separate) give logits
   ``(B, num_latents, vocab)``: the prediction of the token after each latent position.

The blocks are :mod:`perceiverkit.layers`' own :class:`~perceiverkit.layers.blocks.CrossAttentionBlock` and
:class:`~perceiverkit.layers.blocks.SelfAttentionBlock`; this module calls their projections, norms and MLPs
itself because rotary positions and the generation cache sit between the projection and the attention.
Attention goes through the same kernel choice as every :class:`~perceiverkit.layers.attention.MultiHeadAttention`
(:meth:`MultiHeadAttention.attend`: the installed kernel, or the reference :func:`attend` inside
:func:`perceiverkit.accel.reference_path`).

Generation and what it caches (:meth:`PerceiverAR.iter_generate`), all of it exact:

- the cross-attention's keys and values of every context position: a position's key and value depend only on its
  token and its absolute position, so they never change as the context grows;
- the cross-attention's output for every latent position in the window: position ``p`` attends to positions
  ``≤ p``, the same set whichever window it is in, so that output does not change as the window slides either.
  Each new token costs one query against the cached keys (``O(context)``), not a pass over the context;
- the self-attention stack's keys and values of every layer, while the window grows (the prompt and what was
  generated so far are shorter than ``num_latents``: the window starts at position 0 and nothing leaves it).
  Once the window slides, the oldest latent leaves the stack's attention, which changes every later latent's
  output from the first layer on: the deeper layers' keys and values are no longer those of the new window. The
  stack is then recomputed over the window from the cached cross-attention outputs (``num_latents`` positions,
  the short Transformer's cost); only its first layer's inputs are reused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..config import ConfigError, _check, _check_choice, _check_positive
from ..layers.attention import MultiHeadAttention
from ..layers.blocks import CrossAttentionBlock, SelfAttentionBlock
from ..layers.position import apply_rotary, rotary_angles
from ..model import PerceiverOutput
from ..tokenizer import ByteTokenizer
from .base import TaskModel
from .registry import Preset, TaskSpec, register_task

PositionEncodingKind = Literal["rotary", "learned"]
POSITION_ENCODINGS: tuple[str, ...] = ("rotary", "learned")


@dataclass
class PerceiverARConfig:
    """A Perceiver AR causal language model; byte-level by default (:class:`~perceiverkit.tokenizer.ByteTokenizer`).

    ``num_latents`` is the default latent count (the last positions of the input); a call may use fewer.
    ``max_position_embeddings`` bounds the context only with ``position_encoding="learned"``. ``qk_channels``
    (``None``: ``d_model``) is the query/key width of every attention; the value width is ``d_model``.
    ``prefix_dropout`` is the fraction of the prefix (the positions before the latents) left out of the
    cross-attention in training.
    """

    vocab_size: int = ByteTokenizer.vocab_size
    d_model: int = 512
    num_latents: int = 512
    num_self_attention_layers: int = 8
    num_heads: int = 8
    num_cross_attention_heads: int = 8
    qk_channels: int | None = None
    widening_factor: int = 4
    activation: str = "gelu"
    position_encoding: PositionEncodingKind = "rotary"
    max_position_embeddings: int = 8192
    rotary_base: float = 10000.0
    tie_word_embeddings: bool = True
    prefix_dropout: float = 0.0
    attention_dropout: float = 0.0

    @property
    def query_key_channels(self) -> int:
        return self.d_model if self.qk_channels is None else self.qk_channels

    def validate(self) -> None:
        owner = "PerceiverARConfig"
        _check_positive(owner, vocab_size=self.vocab_size, d_model=self.d_model, num_latents=self.num_latents,
                        num_self_attention_layers=self.num_self_attention_layers, num_heads=self.num_heads,
                        num_cross_attention_heads=self.num_cross_attention_heads, qk_channels=self.qk_channels,
                        widening_factor=self.widening_factor, max_position_embeddings=self.max_position_embeddings)
        _check_choice(owner, "position_encoding", self.position_encoding, POSITION_ENCODINGS)
        for name, rate in (("prefix_dropout", self.prefix_dropout), ("attention_dropout", self.attention_dropout)):
            _check(0.0 <= rate < 1.0, f"{owner}.{name} must be in [0, 1), got {rate!r}")
        _check(self.rotary_base > 1.0, f"{owner}.rotary_base must be greater than 1, got {self.rotary_base!r}")
        for heads_name, heads in (("num_heads", self.num_heads),
                                  ("num_cross_attention_heads", self.num_cross_attention_heads)):
            for width_name, width in (("qk_channels", self.query_key_channels), ("d_model", self.d_model)):
                _check(width % heads == 0, f"{owner}.{width_name} ({width}) must be divisible by "
                                           f"{heads_name} ({heads})")
            head_width = self.query_key_channels // heads
            _check(self.position_encoding != "rotary" or head_width % 2 == 0,
                   f"{owner}: rotary positions need an even query/key head width, got {head_width} "
                   f"(qk_channels {self.query_key_channels} / {heads_name} {heads})")


@dataclass
class GenerationCache:
    """What :meth:`PerceiverAR.iter_generate` keeps between tokens (see the module docstring for why it is exact).

    ``cross_keys`` / ``cross_values`` ``(B, H, L, D)``: the cross-attention's keys and values of all ``L``
    positions so far. ``latent_inputs`` ``(B, W, d_model)``: the cross-attention's outputs of the window's ``W``
    positions, ``window_start`` its first position. ``self_keys_values``: per self-attention layer, its keys and
    values ``(B, H, W, D)`` of the window, valid while the window has not slid since they were computed.
    """

    cross_keys: Tensor
    cross_values: Tensor
    latent_inputs: Tensor
    window_start: int
    self_keys_values: list[tuple[Tensor, Tensor]] = field(default_factory=list)

    @property
    def length(self) -> int:
        return self.cross_keys.shape[2]


@dataclass
class GenerationStep:
    """One generated token per batch element ``(B,)`` and the logits it was chosen from ``(B, vocab)``."""

    tokens: Tensor
    logits: Tensor


def next_token_probabilities(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                             top_p: float | None = None) -> Tensor:
    """The sampling distribution ``(B, vocab)`` of logits ``(B, vocab)``: ``softmax(logits / temperature)``
    restricted to the ``top_k`` most likely tokens, then to the smallest set of most likely tokens whose
    probability reaches ``top_p`` (nucleus sampling), renormalised."""
    scaled = logits.float() / temperature  # (B, V)
    if top_k is not None and top_k < scaled.shape[-1]:
        kth_best = scaled.topk(top_k, dim=-1).values[..., -1:]  # (B, 1)
        scaled = scaled.masked_fill(scaled < kth_best, float("-inf"))
    probs = scaled.softmax(dim=-1)
    if top_p is not None and top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)  # (B, V)
        # Keep a token while the mass of the more likely ones has not reached top_p yet (the first always stays).
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
        sorted_probs = sorted_probs.masked_fill(mass_before >= top_p, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """One line for a sampling setting out of range."""
    if not temperature > 0.0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")


def choose_next_token(logits: Tensor, do_sample: bool = False, temperature: float = 1.0, top_k: int | None = None,
                      top_p: float | None = None, generator: torch.Generator | None = None) -> Tensor:
    """The next token ``(B,)`` for logits ``(B, vocab)``: the most likely one, or a sample from
    :func:`next_token_probabilities`."""
    if not do_sample:
        return logits.argmax(dim=-1)
    probs = next_token_probabilities(logits, temperature, top_k, top_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def causal_mask(query_positions: Tensor, key_positions: Tensor, batch_size: int) -> Tensor:
    """``(B, M, N)``: ``True`` where the key's position is at most the query's. ``query_positions`` ``(M,)``,
    ``key_positions`` ``(N,)`` or ``(B, N)``."""
    allowed = key_positions[..., None, :] <= query_positions[:, None]  # (M, N) or (B, M, N)
    return allowed.expand(batch_size, -1, -1) if allowed.dim() == 2 else allowed


def attend_projected(attention: MultiHeadAttention, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
    """``attention``'s output ``(B, M, out_dim)`` for projected heads ``q`` ``(B, H, M, D)``, ``k`` / ``v``
    ``(B, H, N, D|Dv)``, attended by the kernel that module would use (the reference inside ``reference_path()``)."""
    dropout_p = attention.dropout if attention.training else 0.0
    out, _ = attention.attend(q, k, v, mask, dropout_p, False)  # (B, H, M, Dv)
    return attention.merge_heads_and_project(out)


class PerceiverAR(TaskModel[PerceiverARConfig]):
    """Perceiver AR: ``input_ids`` ``(B, L)`` → next-token logits ``(B, num_latents, vocab)`` for the last
    ``num_latents`` positions (see the module docstring). With ``labels`` ``(B, L)`` (usually the input itself)
    the loss is the mean next-token cross-entropy over the latent positions (labels shifted inside, ``-100``
    ignored), as Transformers' causal language models."""

    task = "causal-lm"
    config_class = PerceiverARConfig
    #: FSDP shards this model as one unit, not block by block: it calls its blocks' projections and norms itself,
    #: which a block-level unit would leave sharded (:func:`perceiverkit.train.sharding.shard_model`).
    shard_blocks = False

    def __init__(self, config: PerceiverARConfig) -> None:
        super().__init__(config)
        d, qk = config.d_model, config.query_key_channels
        self.token_embedding = nn.Embedding(config.vocab_size, d)
        self.position_embedding = (nn.Embedding(config.max_position_embeddings, d)
                                   if config.position_encoding == "learned" else None)
        self.cross_attention = CrossAttentionBlock(
            d, d, qk, d, config.num_cross_attention_heads, config.widening_factor, use_query_residual=True,
            activation=config.activation, dropout=config.attention_dropout)
        self.self_attention = nn.ModuleList(
            SelfAttentionBlock(d, qk, d, config.num_heads, config.widening_factor, config.activation,
                               config.attention_dropout)
            for _ in range(config.num_self_attention_layers))
        self.final_norm = nn.LayerNorm(d)
        self.lm_head = None if config.tie_word_embeddings else nn.Linear(d, config.vocab_size)
        #: Recompute each self-attention block in the backward pass instead of keeping its activations (training).
        self.gradient_checkpointing = False
        self.reset_parameters()

    def set_activation_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each self-attention block in the backward pass instead of keeping its activations."""
        self.gradient_checkpointing = enabled

    def set_half_precision_latents(self, enabled: bool = True) -> None:
        if enabled:
            raise ConfigError("half_precision_latents is a Perceiver IO encoder setting; the causal-lm model has no "
                              "such stream: leave model.half_precision_latents off")

    def enable_input_checks(self, finite: bool = True) -> PerceiverAR:
        """Token ids are always checked (range and shape); there is no floating-point input to check."""
        return self

    # --- the pieces of the forward pass, shared by forward() and generation -------------------------------------

    def check_input_ids(self, input_ids: Tensor) -> Tensor:
        """``input_ids`` ``(B, L)`` or ``(L,)`` → ``(B, L)``, after one-line checks of shape, dtype and range."""
        if not isinstance(input_ids, Tensor) or input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
            raise ValueError("input_ids must be an integer tensor of shape (batch, length)")
        if input_ids.dim() == 1:
            input_ids = input_ids[None]
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch, length), got {tuple(input_ids.shape)}")
        if input_ids.numel() == 0:
            raise ValueError(f"input_ids is empty (shape {tuple(input_ids.shape)}); give at least one token")
        low, high = int(input_ids.min()), int(input_ids.max())
        if low < 0 or high >= self.config.vocab_size:
            bad = low if low < 0 else high
            raise ValueError(f"input_ids must be in [0, {self.config.vocab_size}) (the vocabulary), got {bad}")
        length = input_ids.shape[1]
        if self.position_embedding is not None and length > self.config.max_position_embeddings:
            raise ValueError(f"input of {length} tokens is longer than the position table "
                             f"(max_position_embeddings={self.config.max_position_embeddings})")
        return input_ids

    def latent_count(self, num_latents: int | None, length: int) -> int:
        """The latent count of a call: ``num_latents`` (default the config's), at most the input's length."""
        count = self.config.num_latents if num_latents is None else num_latents
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"num_latents must be a positive integer, got {count!r}")
        if count > length:
            raise ValueError(f"num_latents ({count}) is larger than the input ({length} tokens); "
                             f"pass num_latents <= {length} or a longer input")
        return count

    def embed(self, input_ids: Tensor, positions: Tensor) -> Tensor:
        """Token embeddings ``(B, L, d_model)`` of ``input_ids`` ``(B, L)`` at ``positions`` ``(L,)`` (learned
        positions added here; rotary ones are applied in the attention)."""
        x = self.token_embedding(input_ids)
        if self.position_embedding is not None:
            x = x + self.position_embedding(positions)
        return x

    def rotate(self, x: Tensor, positions: Tensor) -> Tensor:
        """Rotary positions on heads ``x`` ``(B, H, N, D)`` at ``positions`` ``(N,)`` or ``(B, N)`` (learned
        positions: unchanged)."""
        if self.position_embedding is not None:
            return x
        cos, sin = rotary_angles(positions, x.shape[-1], self.config.rotary_base)
        return apply_rotary(x, cos, sin)

    def cross_keys_values(self, context: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        """The cross-attention's keys and values ``(B, H, N, D|Dv)`` of ``context`` ``(B, N, d_model)`` at
        ``positions`` ``(N,)`` or ``(B, N)``."""
        block = self.cross_attention
        attention = block.attention
        k, v = attention.kv_proj(block.norm_kv(context)).split([attention.qk_channels, attention.v_channels], -1)
        return self.rotate(attention.split_heads(k), positions), attention.split_heads(v)

    def cross_attend(self, latents: Tensor, latent_positions: Tensor, keys: Tensor, values: Tensor,
                     mask: Tensor | None) -> Tensor:
        """The cross-attention block's output ``(B, M, d_model)`` for latent embeddings ``latents``
        ``(B, M, d_model)`` at ``latent_positions`` ``(M,)``, attending to ``keys`` / ``values``."""
        block = self.cross_attention
        attention = block.attention
        q = self.rotate(attention.split_heads(attention.q_proj(block.norm_q(latents))), latent_positions)
        return block.residual_and_mlp(latents, attend_projected(attention, q, keys, values, mask))

    def self_attend(self, block: SelfAttentionBlock, x: Tensor, positions: Tensor, mask: Tensor | None,
                    past: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One self-attention block on latents ``x`` ``(B, M, d_model)`` at ``positions`` ``(M,)``, after the
        cached keys and values ``past`` of earlier latents (if any). Returns the block's output and the keys and
        values ``(B, H, past + M, D)`` of every latent attended to."""
        attention = block.attention
        qk = attention.qk_channels
        q, k, v = attention.qkv_proj(block.norm(x)).split([qk, qk, attention.v_channels], dim=-1)
        q = self.rotate(attention.split_heads(q), positions)  # (B, H, M, D)
        k = self.rotate(attention.split_heads(k), positions)  # (B, H, M, D)
        v = attention.split_heads(v)  # (B, H, M, Dv)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        x = x + attend_projected(attention, q, k, v, mask)
        return x + block.mlp(block.norm_mlp(x)), (k, v)

    def self_attention_stack(self, x: Tensor, positions: Tensor, past: list[tuple[Tensor, Tensor]] | None = None
                             ) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        """The causal self-attention stack on latents ``x`` ``(B, M, d_model)`` at consecutive ``positions``
        ``(M,)``, after the cached keys and values ``past`` of the window's earlier latents (if any)."""
        cached = 0 if not past else past[0][0].shape[2]
        if x.shape[1] == 1:
            mask = None  # one newest latent: it sees every cached one
        else:
            key_positions = torch.arange(int(positions[0]) - cached, int(positions[-1]) + 1, device=x.device)
            mask = causal_mask(positions, key_positions, x.shape[0])  # (B, M, past + M)
        keys_values = []
        for i, block in enumerate(self.self_attention):
            if self.gradient_checkpointing and self.training and past is None:
                x = checkpoint(lambda z, block=block: self.self_attend(block, z, positions, mask)[0], x,
                               use_reentrant=False)
                continue
            x, kv = self.self_attend(block, x, positions, mask, past[i] if past else None)  # type: ignore[arg-type]
            keys_values.append(kv)
        return x, keys_values

    def head(self, hidden: Tensor) -> Tensor:
        """Logits ``(B, M, vocab)`` of the latents' final states ``(B, M, d_model)``."""
        hidden = self.final_norm(hidden)
        if self.lm_head is None:
            return hidden @ self.token_embedding.weight.t()
        return self.lm_head(hidden)

    def drop_prefix(self, context: Tensor, positions: Tensor, prefix_length: int) -> tuple[Tensor, Tensor]:
        """Training only: keep a random ``1 − prefix_dropout`` of the ``prefix_length`` prefix positions of
        ``context`` ``(B, L, d_model)`` (a different draw per batch element, in order) and every latent one.
        Returns the kept context ``(B, K, d_model)`` and its positions ``(B, K)``."""
        batch = context.shape[0]
        keep = prefix_length - int(prefix_length * self.config.prefix_dropout)
        scores = torch.rand(batch, prefix_length, device=context.device)
        kept = scores.topk(keep, dim=-1).indices.sort(dim=-1).values  # (B, keep)
        latent_positions = positions[prefix_length:].expand(batch, -1)  # (B, M)
        kept_positions = torch.cat([kept, latent_positions], dim=1)  # (B, K)
        rows = kept_positions[..., None].expand(-1, -1, context.shape[-1])
        return context.gather(1, rows), kept_positions

    # --- forward and loss ----------------------------------------------------------------------------------------

    def forward(self, input_ids: Tensor, labels: Tensor | None = None, *,
                num_latents: int | None = None) -> PerceiverOutput:
        """Logits ``(B, M, vocab)`` of the last ``M = num_latents`` positions of ``input_ids`` ``(B, L)``:
        ``logits[:, i]`` predicts the token at position ``L − M + i + 1``."""
        input_ids = self.check_input_ids(input_ids)
        batch, length = input_ids.shape
        count = self.latent_count(num_latents, length)
        prefix_length = length - count
        positions = torch.arange(length, device=input_ids.device)  # (L,)
        x = self.embed(input_ids, positions)  # (B, L, d_model)
        latents, latent_positions = x[:, prefix_length:], positions[prefix_length:]  # (B, M, d_model), (M,)
        context, context_positions = x, positions
        if self.training and self.config.prefix_dropout > 0.0 and prefix_length > 0:
            context, context_positions = self.drop_prefix(x, positions, prefix_length)  # (B, K, d), (B, K)
        keys, values = self.cross_keys_values(context, context_positions)  # (B, H, K, D)
        mask = causal_mask(latent_positions, context_positions, batch)  # (B, M, K)
        hidden = self.cross_attend(latents, latent_positions, keys, values, mask)  # (B, M, d_model)
        hidden, _ = self.self_attention_stack(hidden, latent_positions)
        logits = self.head(hidden)  # (B, M, vocab)
        loss = None if labels is None else self.loss(logits, labels, length)
        return PerceiverOutput(logits=logits, last_hidden_state=hidden, loss=loss)

    def loss(self, logits: Tensor, labels: Tensor, length: int) -> Tensor:
        """Mean next-token cross-entropy: latent ``i`` (position ``p``) against ``labels[:, p + 1]``; the last
        latent has no target inside the input. ``-100`` labels are ignored."""
        if labels.shape != (logits.shape[0], length):
            raise ValueError(f"labels must have the input's shape {(logits.shape[0], length)}, "
                             f"got {tuple(labels.shape)}")
        count = logits.shape[1]
        targets = labels[:, length - count + 1:]  # (B, M - 1)
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                               ignore_index=-100)

    # --- generation ----------------------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, input_ids: Tensor, max_new_tokens: int, do_sample: bool = False, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, num_latents: int | None = None,
                 generator: torch.Generator | None = None, use_cache: bool = True) -> Tensor:
        """``input_ids`` ``(B, L)`` followed by ``max_new_tokens`` generated tokens: ``(B, L + max_new_tokens)``.

        Greedy by default; ``do_sample`` samples from :func:`next_token_probabilities` (``temperature``,
        ``top_k``, ``top_p``) with ``generator``. The window is the last ``num_latents`` positions (default the
        config's; fewer while the sequence is shorter). ``use_cache=False`` recomputes every step from scratch
        (the same tokens; for checking the cache). Call ``.eval()`` first: in training mode dropout applies."""
        input_ids = self.check_input_ids(input_ids)
        steps = self.iter_generate(input_ids, max_new_tokens, do_sample, temperature, top_k, top_p, num_latents,
                                   generator, use_cache)
        new = [step.tokens[:, None] for step in steps]
        return torch.cat([input_ids, *new], dim=1)

    def iter_generate(self, input_ids: Tensor, max_new_tokens: int, do_sample: bool = False,
                      temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                      num_latents: int | None = None, generator: torch.Generator | None = None,
                      use_cache: bool = True) -> Iterator[GenerationStep]:
        """:meth:`generate` one token at a time (for streaming): each step's tokens ``(B,)`` and logits
        ``(B, vocab)``. The arguments are checked before the first step."""
        input_ids = self.check_input_ids(input_ids)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be a non-negative integer, got {max_new_tokens!r}")
        check_sampling(temperature, top_k, top_p)
        window = self.config.num_latents if num_latents is None else num_latents
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"num_latents must be a positive integer, got {window!r}")
        total = input_ids.shape[1] + max_new_tokens
        if self.position_embedding is not None and total > self.config.max_position_embeddings + 1:
            raise ValueError(f"prompt ({input_ids.shape[1]} tokens) + max_new_tokens ({max_new_tokens}) is longer "
                             f"than the position table (max_position_embeddings="
                             f"{self.config.max_position_embeddings})")
        return self._steps(input_ids, max_new_tokens, window, use_cache,
                           lambda logits: choose_next_token(logits, do_sample, temperature, top_k, top_p, generator))

    def _steps(self, input_ids: Tensor, max_new_tokens: int, window: int, use_cache: bool,
               choose: Callable[[Tensor], Tensor]) -> Iterator[GenerationStep]:
        sequence, cache = input_ids, None
        for step in range(max_new_tokens):
            with torch.no_grad():
                if not use_cache:
                    logits = self(sequence, num_latents=min(window, sequence.shape[1])).logits[:, -1]
                elif cache is None:
                    logits, cache = self.prefill(sequence, window)
                else:
                    logits = self.extend(cache, sequence[:, -1], window)
            tokens = choose(logits)  # (B,)
            yield GenerationStep(tokens=tokens, logits=logits)
            if step + 1 < max_new_tokens:
                sequence = torch.cat([sequence, tokens[:, None]], dim=1)

    def prefill(self, input_ids: Tensor, window: int) -> tuple[Tensor, GenerationCache]:
        """The last position's logits ``(B, vocab)`` for a prompt ``(B, L)`` and the cache that continues it."""
        batch, length = input_ids.shape
        count = min(window, length)
        positions = torch.arange(length, device=input_ids.device)
        x = self.embed(input_ids, positions)  # (B, L, d_model)
        keys, values = self.cross_keys_values(x, positions)  # (B, H, L, D)
        start = length - count
        mask = causal_mask(positions[start:], positions, batch)  # (B, M, L)
        latent_inputs = self.cross_attend(x[:, start:], positions[start:], keys, values, mask)  # (B, M, d_model)
        hidden, keys_values = self.self_attention_stack(latent_inputs, positions[start:])
        cache = GenerationCache(keys, values, latent_inputs, start, keys_values)
        return self.head(hidden[:, -1:])[:, 0], cache

    def extend(self, cache: GenerationCache, tokens: Tensor, window: int) -> Tensor:
        """Append ``tokens`` ``(B,)`` at the next position; returns that position's logits ``(B, vocab)`` and
        updates ``cache`` in place (see the module docstring for what is reused and why it is exact)."""
        position = cache.length
        here = torch.tensor([position], device=tokens.device)  # (1,)
        x = self.embed(tokens[:, None], here)  # (B, 1, d_model)
        keys, values = self.cross_keys_values(x, here)  # (B, H, 1, D)
        cache.cross_keys = torch.cat([cache.cross_keys, keys], dim=2)
        cache.cross_values = torch.cat([cache.cross_values, values], dim=2)
        # The newest position sees every cached one: no mask.
        latent_input = self.cross_attend(x, here, cache.cross_keys, cache.cross_values, None)  # (B, 1, d_model)
        start = max(0, position + 1 - window)
        cache.latent_inputs = torch.cat([cache.latent_inputs, latent_input], dim=1)[:, start - cache.window_start:]
        if start == cache.window_start:  # the window grew: every layer's cached keys and values still hold
            hidden, cache.self_keys_values = self.self_attention_stack(latent_input, here, cache.self_keys_values)
        else:  # the window slid: the stack's deeper layers change for every latent, recompute it
            cache.window_start = start
            window_positions = torch.arange(start, position + 1, device=tokens.device)
            hidden, cache.self_keys_values = self.self_attention_stack(cache.latent_inputs, window_positions)
        return self.head(hidden[:, -1:])[:, 0]


def _small() -> PerceiverARConfig:
    return PerceiverARConfig(d_model=256, num_latents=256, num_self_attention_layers=6, num_heads=4,
                             num_cross_attention_heads=4, max_position_embeddings=4096)


def _tiny() -> PerceiverARConfig:
    return PerceiverARConfig(d_model=64, num_latents=32, num_self_attention_layers=2, num_heads=2,
                             num_cross_attention_heads=2, widening_factor=2, max_position_embeddings=1024)


register_task(TaskSpec(
    name=PerceiverAR.task,
    model_class=PerceiverAR,
    aliases=("perceiver-ar", "text-generation"),  # text-generation: Transformers' pipeline task
    presets=(
        Preset(name="perceiver-ar-small", task=PerceiverAR.task, make_config=_small,
               description="Byte-level Perceiver AR for the CPU: 256 latents over a context of thousands of bytes, "
                           "6 self-attention layers of width 256 (untrained)."),
        Preset(name="perceiver-ar-tiny", task=PerceiverAR.task, make_config=_tiny,
               description="A tiny byte-level Perceiver AR for tests and quick runs (untrained)."),
    ),
    lightning_module="perceiverkit.train.causal_lm:CausalLMModule",
    data_sources={"packed-text": "perceiverkit.train.causal_lm:PackedTextData",
                  "hf-dataset": "perceiverkit.train.causal_lm:HFPackedTextData"},
    pipeline="perceiverkit.pipelines.text_generation:TextGeneration",
    pipeline_tag="text-generation",
))

__all__ = ["GenerationCache", "GenerationStep", "PerceiverAR", "PerceiverARConfig", "choose_next_token",
           "next_token_probabilities"]
