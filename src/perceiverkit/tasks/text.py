"""Byte-level text models: masked language modelling and sequence classification, with their presets and
Transformers mappings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import ConfigError, DecoderConfig, EncoderConfig, PositionEncodingConfig, _check_positive
from ..decoders import CrossAttentionDecoder
from ..encoder import PerceiverEncoder
from ..model import PerceiverIO, PerceiverOutput
from ..processors.text import TextPreprocessor, TiedEmbeddingDecoder
from ..tokenizer import ByteTokenizer
from ..word_tokenizer import WordHashTokenizer
from . import transformers_keys as keys
from .base import TaskModel, pick_input
from .heads import ProblemType, check_labels, classification_decoder, classification_loss
from .registry import Preset, TaskSpec, TransformersArchitecture, register_task


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
        check_labels("SequenceClassifierConfig", self.num_labels, self.labels, self.problem_type)


class MaskedLanguageModel(TaskModel[MaskedLanguageModelConfig]):
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
        input_ids = pick_input(input_ids, inputs, "input_ids")
        if output_points is None and isinstance(input_ids, Tensor) and input_ids.dim() == 2:
            output_points = torch.arange(input_ids.shape[1], device=input_ids.device)
        out = self.perceiver(input_ids, attention_mask, output_points, output_attentions, output_hidden_states)
        if labels is not None:
            if tuple(labels.shape) != tuple(input_ids.shape):
                raise ValueError(f"labels must have the shape of input_ids {tuple(input_ids.shape)}, "
                                 f"got {tuple(labels.shape)}")
            assert output_points is not None
            targets = labels[:, output_points] if output_points.dim() == 1 else torch.gather(labels, 1, output_points)
            out.loss = F.cross_entropy(out.logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)
        return out


#: The tokenizers a text classifier may read: UTF-8 bytes, or hashed words (and word pairs).
TOKENIZER_KINDS = ("bytes", "words")


def make_tokenizer(settings: Mapping[str, Any], max_length: int) -> ByteTokenizer | WordHashTokenizer:
    """The tokenizer that ``settings`` name: ``{"kind": "bytes"}`` or ``{"kind": "words", "num_buckets": n,
    "ngrams": 1|2}`` (what a text classifier saves in ``perceiverkit.json``), reading at most ``max_length``."""
    kind = settings.get("kind", "bytes")
    extra = sorted(set(settings) - {"kind", "num_buckets", "ngrams"})
    if kind not in TOKENIZER_KINDS or extra or (kind == "bytes" and len(settings) > 1):
        raise ValueError(f"tokenizer settings must be {{'kind': 'bytes'}} or {{'kind': 'words', 'num_buckets': n, "
                         f"'ngrams': 1|2}}, got {dict(settings)}")
    if kind == "bytes":
        return ByteTokenizer(model_max_length=max_length)
    return WordHashTokenizer(num_buckets=int(settings.get("num_buckets", 1 << 17)),
                             ngrams=int(settings.get("ngrams", 2)), model_max_length=max_length)


class SequenceClassifier(TaskModel[SequenceClassifierConfig]):
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

    @property
    def tokenizer_settings(self) -> dict[str, Any]:
        """The tokenizer this model reads (see :func:`make_tokenizer`): set by training, saved in
        ``perceiverkit.json``; UTF-8 bytes when nothing says otherwise."""
        return dict(self.__dict__.get("_tokenizer_settings") or {"kind": "bytes"})

    @tokenizer_settings.setter
    def tokenizer_settings(self, settings: Mapping[str, Any]) -> None:
        tokenizer = make_tokenizer(settings, self.config.max_position_embeddings)
        if tokenizer.vocab_size != self.config.vocab_size:
            raise ValueError(f"tokenizer {dict(settings)} has {tokenizer.vocab_size} ids but the model reads "
                             f"{self.config.vocab_size}")
        self.__dict__["_tokenizer_settings"] = dict(settings)

    def make_tokenizer(self) -> ByteTokenizer | WordHashTokenizer:
        """A tokenizer of :attr:`tokenizer_settings` for this model's input length."""
        return make_tokenizer(self.tokenizer_settings, self.config.max_position_embeddings)

    def save_processor(self, directory: Path) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer_settings}

    def load_processor(self, directory: Path, settings: dict[str, Any]) -> None:
        if "tokenizer" in settings:
            self.tokenizer_settings = settings["tokenizer"]

    def check_transformers_format(self) -> None:
        # Transformers (and our loader of its format) reads text as UTF-8 bytes: another tokenizer would be lost.
        if self.tokenizer_settings != {"kind": "bytes"}:
            raise ConfigError(f"tokenizer {self.tokenizer_settings} cannot be saved in Transformers' format, which "
                              "reads UTF-8 bytes; save in perceiverkit's format instead")

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
            pick_input(input_ids, inputs, "input_ids"), attention_mask, None, output_attentions, output_hidden_states
        )
        if labels is not None:
            out.loss = classification_loss(out.logits, labels, self.config.num_labels, self.config.problem_type)
        return out


# --- presets and Transformers mappings --------------------------------------------------------------------------

def _language_perceiver() -> MaskedLanguageModelConfig:
    # The published model narrows queries/keys to 256 channels and widens values to the latent width.
    return MaskedLanguageModelConfig(encoder=EncoderConfig(qk_channels=256, v_channels=1280))


def _text_fields(hf: dict[str, Any]) -> dict[str, Any]:
    return {"vocab_size": keys.hf_get(hf, "vocab_size"),
            "max_position_embeddings": keys.hf_get(hf, "max_position_embeddings"),
            "d_model": keys.hf_get(hf, "d_model"), "encoder": keys.encoder_config(hf)}


def _text_to_hf(architecture: str, config: TextConfig) -> dict[str, Any]:
    return keys.hf_config(architecture, vocab_size=config.vocab_size,
                          max_position_embeddings=config.max_position_embeddings, d_model=config.d_model,
                          **keys.encoder_to_hf(config.encoder))


def _mlm_from_transformers(hf: dict[str, Any]) -> MaskedLanguageModelConfig:
    return MaskedLanguageModelConfig(**_text_fields(hf))


def _mlm_to_transformers(config: MaskedLanguageModelConfig) -> dict[str, Any]:
    # Transformers hard-codes the decoder's attention: 8 heads over 8 × 32 query/key channels.
    keys.require_fields(config, MaskedLanguageModelConfig(), ("decoder_num_heads", "decoder_qk_channels"),
                        "PerceiverForMaskedLM")
    return _text_to_hf("PerceiverForMaskedLM", config)


def _mlm_keys(config: MaskedLanguageModelConfig) -> list[keys.KeyRule]:
    return [
        *keys.text_preprocessor("perceiver.preprocessor", "perceiver.input_preprocessor"),
        *keys.encoder("perceiver.encoder", "perceiver", config.encoder.num_self_attends_per_block),
        *keys.decoder("perceiver.decoder", "perceiver.decoder", final_project=False),
        keys.rule("perceiver.postprocessor.bias", "embedding_decoder.bias"),
    ]


def _classifier_from_transformers(hf: dict[str, Any]) -> SequenceClassifierConfig:
    labels = keys.label_names(hf)
    return SequenceClassifierConfig(**_text_fields(hf), num_labels=keys.num_labels(hf, labels),
                                    problem_type=hf.get("problem_type"), labels=labels)


def _classifier_to_transformers(config: SequenceClassifierConfig) -> dict[str, Any]:
    return {**_text_to_hf("PerceiverForSequenceClassification", config),
            **keys.labels_to_hf(config.num_labels, config.labels, config.problem_type)}


def _classifier_keys(config: SequenceClassifierConfig) -> list[keys.KeyRule]:
    return [
        *keys.text_preprocessor("perceiver.preprocessor", "perceiver.input_preprocessor"),
        *keys.encoder("perceiver.encoder", "perceiver", config.encoder.num_self_attends_per_block),
        *keys.decoder("perceiver.decoder", "perceiver.decoder.decoder"),
    ]


register_task(TaskSpec(
    name=MaskedLanguageModel.task,
    model_class=MaskedLanguageModel,
    aliases=("mlm", "fill-mask"),  # fill-mask: Transformers' pipeline task
    presets=(Preset(
        name="language-perceiver",
        task=MaskedLanguageModel.task,
        make_config=_language_perceiver,
        description="Byte-level masked language model (201M parameters), trained on English Wikipedia and C4.",
        hub_id="deepmind/language-perceiver",
    ),),
    transformers=(TransformersArchitecture("PerceiverForMaskedLM", _mlm_from_transformers, _mlm_keys,
                                           _mlm_to_transformers),),
    lightning_module="perceiverkit.train.modules:MaskedLMModule",
    data_sources={"text-corpus": "perceiverkit.train.datamodules:TextCorpusData",
                  "hf-dataset": "perceiverkit.train.datamodules:HFTextCorpusData"},
    pipeline="perceiverkit.pipelines.fill_mask:FillMask",
    pipeline_tag="fill-mask",
))

register_task(TaskSpec(
    name=SequenceClassifier.task,
    model_class=SequenceClassifier,
    aliases=("sentiment-analysis",),  # Transformers' other name for its text-classification pipeline
    pipeline_tag="text-classification",
    transformers=(TransformersArchitecture("PerceiverForSequenceClassification", _classifier_from_transformers,
                                           _classifier_keys, _classifier_to_transformers),),
    lightning_module="perceiverkit.train.modules:ClassificationModule",
    data_sources={"wordnet-lexnames": "perceiverkit.train.datamodules:WordNetData",
                  "text-files": "perceiverkit.train.datamodules:LabelledTextFilesData",
                  "hf-dataset": "perceiverkit.train.datamodules:HFTextClassificationData"},
    pipeline="perceiverkit.pipelines.text_classification:TextClassification",
))
