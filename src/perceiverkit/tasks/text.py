"""Byte-level text models: masked language modelling and sequence classification."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import DecoderConfig, EncoderConfig, PositionEncodingConfig, _check, _check_positive
from ..decoders import CrossAttentionDecoder
from ..encoder import PerceiverEncoder
from ..model import PerceiverIO, PerceiverOutput
from ..processors.text import TextPreprocessor, TiedEmbeddingDecoder
from .base import TaskModel
from .heads import PROBLEM_TYPES, ProblemType, classification_decoder, classification_loss



@dataclass
class TextConfig:
    """What every byte-level text model shares: the vocabulary, the input embedding and the encoder."""

    vocab_size: int = 262
    max_position_embeddings: int = 2048
    d_model: int = 768
    encoder: EncoderConfig = field(default_factory=EncoderConfig)

    def validate(self) -> None:
        _check_positive(type(self).__name__, vocab_size=self.vocab_size,
                        max_position_embeddings=self.max_position_embeddings, d_model=self.d_model)
        self.encoder.validate()


@dataclass
class MaskedLanguageModelConfig(TextConfig):
    """A byte-level masked language model. Defaults are DeepMind's ``language-perceiver``.

    The decoder has one learned query per position; its attention sizes are fixed by the published model.
    """

    decoder_num_heads: int = 8
    decoder_qk_channels: int = 256

    def validate(self) -> None:
        super().validate()
        _check_positive("MaskedLanguageModelConfig", decoder_num_heads=self.decoder_num_heads,
                        decoder_qk_channels=self.decoder_qk_channels)


@dataclass
class SequenceClassifierConfig(TextConfig):
    """A byte-level sequence classifier (or regressor, with ``num_labels=1``).

    ``problem_type`` picks the loss; when ``None`` it is inferred from ``num_labels`` and the labels' dtype,
    as Transformers does. ``labels`` optionally names the classes.
    """

    num_labels: int = 2
    problem_type: ProblemType | None = None
    labels: tuple[str, ...] | None = None

    def validate(self) -> None:
        super().validate()
        _check_positive("SequenceClassifierConfig", num_labels=self.num_labels)
        _check(self.problem_type is None or self.problem_type in PROBLEM_TYPES,
               f"SequenceClassifierConfig.problem_type must be one of {list(PROBLEM_TYPES)} or None, "
               f"got {self.problem_type!r}")
        _check(self.labels is None or len(self.labels) == self.num_labels,
               f"SequenceClassifierConfig.labels names {len(self.labels or ())} classes, expected {self.num_labels}")


def _pick_input(input_ids: Tensor | None, inputs: Tensor | None) -> Tensor:
    if input_ids is not None and inputs is not None:
        raise ValueError("pass either input_ids or inputs (an alias), not both")
    chosen = input_ids if input_ids is not None else inputs
    if chosen is None:
        raise ValueError("input_ids is required")
    return chosen


class MaskedLanguageModel(TaskModel):
    """Predicts the byte at every position (or at chosen ``output_points``) from a latent encoding.

    Unlike Transformers, which always decodes ``max_position_embeddings`` positions, logits have the input's
    length; during training, pass the masked positions as ``output_points`` to decode only those.
    """

    task = "masked-lm"
    config_class = MaskedLanguageModelConfig

    def __init__(self, config: MaskedLanguageModelConfig) -> None:
        super().__init__(config)
        enc = config.encoder
        preprocessor = TextPreprocessor(config.vocab_size, config.d_model, config.max_position_embeddings)
        decoder = CrossAttentionDecoder(
            DecoderConfig(
                output_index_dims=(config.max_position_embeddings,),
                query_channels=config.d_model,
                queries=PositionEncodingConfig(kind="trainable", num_channels=config.d_model),
                qk_channels=config.decoder_qk_channels,
                v_channels=config.d_model,
                num_heads=config.decoder_num_heads,
                use_query_residual=False,
                final_project=False,
                activation=enc.activation,
                attention_dropout=enc.attention_dropout,
            ),
            latent_channels=enc.d_latents,
        )
        self.perceiver = PerceiverIO(
            encoder=PerceiverEncoder(enc, input_channels=config.d_model),
            decoder=decoder,
            preprocessor=preprocessor,
            postprocessor=TiedEmbeddingDecoder(preprocessor.token_embedding),
        )
        self.reset_parameters()

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
        *,
        inputs: Tensor | None = None,
        output_points: Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> PerceiverOutput:
        """Logits ``(B, L, vocab)``, or ``(B, Q, vocab)`` at ``output_points`` (``(Q,)`` or ``(B, Q)`` positions).

        ``labels`` ``(B, L)`` holds the target id at each position and -100 where no loss is wanted.
        """
        input_ids = _pick_input(input_ids, inputs)
        if output_points is None and isinstance(input_ids, Tensor) and input_ids.dim() == 2:
            output_points = torch.arange(input_ids.shape[1], device=input_ids.device)
        out = self.perceiver(input_ids, attention_mask, output_points, output_attentions, output_hidden_states)
        if labels is not None:
            if tuple(labels.shape) != tuple(input_ids.shape):
                raise ValueError(f"labels must have the shape of input_ids {tuple(input_ids.shape)}, got {tuple(labels.shape)}")
            assert output_points is not None
            targets = labels[:, output_points] if output_points.dim() == 1 else torch.gather(labels, 1, output_points)
            out.loss = F.cross_entropy(out.logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)
        return out


class SequenceClassifier(TaskModel):
    """Classifies (or regresses) a byte sequence with one learned decoder query."""

    task = "text-classification"
    config_class = SequenceClassifierConfig

    def __init__(self, config: SequenceClassifierConfig) -> None:
        super().__init__(config)
        enc = config.encoder
        decoder = classification_decoder(enc, config.num_labels)
        self.perceiver = PerceiverIO(
            encoder=PerceiverEncoder(enc, input_channels=config.d_model),
            decoder=decoder,
            preprocessor=TextPreprocessor(config.vocab_size, config.d_model, config.max_position_embeddings),
        )
        self.reset_parameters()

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
        *,
        inputs: Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> PerceiverOutput:
        """Logits ``(B, num_labels)``; with ``labels``, also the loss for the config's problem type."""
        out = self.perceiver(
            _pick_input(input_ids, inputs), attention_mask, None, output_attentions, output_hidden_states
        )
        if labels is not None:
            out.loss = classification_loss(out.logits, labels, self.config.num_labels, self.config.problem_type)
        return out
