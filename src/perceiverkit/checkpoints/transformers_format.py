"""Transformers' Perceiver checkpoints: config translation and parameter-name tables, one per architecture.

This is the only module that knows Transformers' names. To support another architecture, add an
:class:`Architecture` entry with a config translator and a key table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import ConfigError, EncoderConfig, PositionEncodingConfig
from ..processors.image import ImagePreprocessorConfig
from ..tasks.flow import OpticalFlowConfig
from ..tasks.multimodal import MultimodalAutoencoderConfig
from ..tasks.text import MaskedLanguageModelConfig, SequenceClassifierConfig
from ..tasks.vision import ImageClassifierConfig
from .keymap import KeyRule, affine, fused, rule

# Transformers' PerceiverConfig defaults: a config.json may omit any field equal to its default.
HF_DEFAULTS: dict[str, Any] = {
    "num_latents": 256,
    "d_latents": 1280,
    "d_model": 768,
    "num_blocks": 1,
    "num_self_attends_per_block": 26,
    "num_self_attention_heads": 8,
    "num_cross_attention_heads": 8,
    "qk_channels": None,
    "v_channels": None,
    "cross_attention_shape_for_attention": "kv",
    "self_attention_widening_factor": 1,
    "cross_attention_widening_factor": 1,
    "hidden_act": "gelu",
    "attention_probs_dropout_prob": 0.1,
    "use_query_residual": True,
    "vocab_size": 262,
    "max_position_embeddings": 2048,
    "image_size": 56,
    "train_size": (368, 496),
    "num_frames": 16,
    "audio_samples_per_frame": 1920,
    "samples_per_patch": 16,
    "output_shape": (1, 16, 224, 224),
    "output_num_channels": 512,
    "_label_trainable_num_channels": 1024,
}


def _get(hf: dict[str, Any], key: str) -> Any:
    return hf.get(key, HF_DEFAULTS[key])


def encoder_config(hf: dict[str, Any]) -> EncoderConfig:
    """Our encoder config from a Transformers ``PerceiverConfig`` dict."""
    activation = _get(hf, "hidden_act")
    if not isinstance(activation, str):
        raise ConfigError(f"hidden_act must be an activation name, got {activation!r}")
    return EncoderConfig(
        num_latents=_get(hf, "num_latents"),
        d_latents=_get(hf, "d_latents"),
        num_blocks=_get(hf, "num_blocks"),
        num_self_attends_per_block=_get(hf, "num_self_attends_per_block"),
        num_self_attention_heads=_get(hf, "num_self_attention_heads"),
        num_cross_attention_heads=_get(hf, "num_cross_attention_heads"),
        qk_channels=_get(hf, "qk_channels"),
        v_channels=_get(hf, "v_channels"),
        cross_attention_shape_for_attention=_get(hf, "cross_attention_shape_for_attention"),
        self_attention_widening_factor=_get(hf, "self_attention_widening_factor"),
        cross_attention_widening_factor=_get(hf, "cross_attention_widening_factor"),
        use_query_residual=bool(_get(hf, "use_query_residual")),
        activation=activation,
        attention_dropout=float(_get(hf, "attention_probs_dropout_prob")),
    )


def _label_names(hf: dict[str, Any]) -> tuple[str, ...] | None:
    id2label = hf.get("id2label")
    if not id2label:
        return None
    return tuple(str(id2label[k]) for k in sorted(id2label, key=int))


# --- key tables, block by block -------------------------------------------------------------------------------

def cross_attention_block(ours: str, theirs: str) -> list[KeyRule]:
    attn = f"{theirs}.attention.self"
    return [
        *affine(f"{ours}.norm_q", f"{attn}.layernorm1"),
        *affine(f"{ours}.norm_kv", f"{attn}.layernorm2"),
        *affine(f"{ours}.attention.q_proj", f"{attn}.query"),
        *fused(f"{ours}.attention.kv_proj", f"{attn}.key", f"{attn}.value"),
        *affine(f"{ours}.attention.out_proj", f"{theirs}.attention.output.dense"),
        *affine(f"{ours}.norm_mlp", f"{theirs}.layernorm"),
        *affine(f"{ours}.mlp.fc1", f"{theirs}.mlp.dense1"),
        *affine(f"{ours}.mlp.fc2", f"{theirs}.mlp.dense2"),
    ]


def self_attention_block(ours: str, theirs: str) -> list[KeyRule]:
    attn = f"{theirs}.attention.self"
    return [
        *affine(f"{ours}.norm", f"{attn}.layernorm1"),
        *fused(f"{ours}.attention.qkv_proj", f"{attn}.query", f"{attn}.key", f"{attn}.value"),
        *affine(f"{ours}.attention.out_proj", f"{theirs}.attention.output.dense"),
        *affine(f"{ours}.norm_mlp", f"{theirs}.layernorm"),
        *affine(f"{ours}.mlp.fc1", f"{theirs}.mlp.dense1"),
        *affine(f"{ours}.mlp.fc2", f"{theirs}.mlp.dense2"),
    ]


def encoder(ours: str, theirs: str, num_self_attends: int) -> list[KeyRule]:
    """``theirs`` is the PerceiverModel prefix (latents live beside the encoder there)."""
    rules = [rule(f"{ours}.latents", f"{theirs}.embeddings.latents")]
    rules += cross_attention_block(f"{ours}.cross_attention", f"{theirs}.encoder.cross_attention")
    for i in range(num_self_attends):
        rules += self_attention_block(f"{ours}.self_attention.{i}", f"{theirs}.encoder.self_attends.{i}")
    return rules


def decoder(ours: str, theirs: str, trainable_queries: bool = True, project_pos: bool = False,
            final_project: bool = True) -> list[KeyRule]:
    """A Transformers ``PerceiverBasicDecoder`` at ``theirs``."""
    rules = []
    if trainable_queries:
        rules.append(rule(f"{ours}.queries.encoding.embeddings", f"{theirs}.output_position_encodings.position_embeddings"))
    if project_pos:
        rules += affine(f"{ours}.queries.projection", f"{theirs}.positions_projection")
    rules += cross_attention_block(f"{ours}.cross_attention", f"{theirs}.decoding_cross_attention")
    if final_project:
        rules += affine(f"{ours}.final_projection", f"{theirs}.final_layer")
    return rules


def text_preprocessor(ours: str, theirs: str) -> list[KeyRule]:
    return [
        rule(f"{ours}.token_embedding.weight", f"{theirs}.embeddings.weight"),
        rule(f"{ours}.position_embedding.weight", f"{theirs}.position_embeddings.weight"),
    ]


def image_preprocessor(ours: str, theirs: str, config: ImagePreprocessorConfig) -> list[KeyRule]:
    rules: list[KeyRule] = []
    if config.prep_type == "conv":
        rules.append(rule(f"{ours}.conv.layers.0.weight", f"{theirs}.convnet.conv.weight"))
        if config.use_batchnorm:
            bn = [f"{ours}.conv.layers.1", f"{theirs}.convnet.batchnorm"]
            rules += [rule(f"{bn[0]}.{n}", f"{bn[1]}.{n}")
                      for n in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    elif config.prep_type == "conv1x1":
        rules += affine(f"{ours}.conv", f"{theirs}.convnet_1x1")
    elif config.prep_type == "patches" and config.linear_after_patching:
        rules += affine(f"{ours}.linear", f"{theirs}.conv_after_patches")
    if config.position.kind == "trainable":
        rules.append(rule(f"{ours}.positions.encoding.embeddings", f"{theirs}.position_embeddings.position_embeddings"))
    if config.position.project_pos_dim:
        rules += affine(f"{ours}.positions.projection", f"{theirs}.positions_projection")
    return rules


# --- architectures ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Architecture:
    """How to turn one Transformers architecture into one of our task models."""

    task: str
    config_from_hf: Callable[[dict[str, Any]], Any]
    key_rules: Callable[[Any], list[KeyRule]]


def _mlm_config(hf: dict[str, Any]) -> MaskedLanguageModelConfig:
    return MaskedLanguageModelConfig(
        vocab_size=_get(hf, "vocab_size"),
        max_position_embeddings=_get(hf, "max_position_embeddings"),
        d_model=_get(hf, "d_model"),
        encoder=encoder_config(hf),
    )


def _mlm_rules(config: MaskedLanguageModelConfig) -> list[KeyRule]:
    return [
        *text_preprocessor("perceiver.preprocessor", "perceiver.input_preprocessor"),
        *encoder("perceiver.encoder", "perceiver", config.encoder.num_self_attends_per_block),
        *decoder("perceiver.decoder", "perceiver.decoder", final_project=False),
        rule("perceiver.postprocessor.bias", "embedding_decoder.bias"),
    ]


def _classifier_config(hf: dict[str, Any]) -> SequenceClassifierConfig:
    labels = _label_names(hf)
    return SequenceClassifierConfig(
        vocab_size=_get(hf, "vocab_size"),
        max_position_embeddings=_get(hf, "max_position_embeddings"),
        d_model=_get(hf, "d_model"),
        encoder=encoder_config(hf),
        num_labels=len(labels) if labels else int(hf.get("num_labels", 2)),
        problem_type=hf.get("problem_type"),
        labels=labels,
    )


def _classifier_rules(config: SequenceClassifierConfig) -> list[KeyRule]:
    return [
        *text_preprocessor("perceiver.preprocessor", "perceiver.input_preprocessor"),
        *encoder("perceiver.encoder", "perceiver", config.encoder.num_self_attends_per_block),
        *decoder("perceiver.decoder", "perceiver.decoder.decoder"),
    ]


def _fourier(num_bands: int, max_resolution: tuple[int, ...]) -> PositionEncodingConfig:
    return PositionEncodingConfig(kind="fourier", num_bands=num_bands, max_resolution=max_resolution)


def _image_size(hf: dict[str, Any]) -> int:
    size = _get(hf, "image_size")
    if isinstance(size, (list, tuple)):
        if len(set(size)) != 1:
            raise ConfigError(f"image_size must be square for the learned-position classifier, got {size}")
        size = size[0]
    return int(size)


# What Transformers hard-codes in each image classifier's preprocessor.
_IMAGE_PREPROCESSORS: dict[str, Callable[[dict[str, Any]], ImagePreprocessorConfig]] = {
    "PerceiverForImageClassificationLearned": lambda hf: ImagePreprocessorConfig(
        prep_type="conv1x1", out_channels=256, spatial_downsample=1,
        position=PositionEncodingConfig(kind="trainable", num_channels=256, project_pos_dim=256),
        position_grid=(_image_size(hf), _image_size(hf))),
    "PerceiverForImageClassificationFourier": lambda hf: ImagePreprocessorConfig(
        prep_type="pixels", spatial_downsample=1, position=_fourier(64, (224, 224))),
    "PerceiverForImageClassificationConvProcessing": lambda hf: ImagePreprocessorConfig(
        prep_type="conv", out_channels=64, spatial_downsample=4, position=_fourier(64, (56, 56))),
}


def _image_classifier(name: str) -> Architecture:
    def config_from_hf(hf: dict[str, Any]) -> ImageClassifierConfig:
        labels = _label_names(hf)
        return ImageClassifierConfig(
            image=_IMAGE_PREPROCESSORS[name](hf), encoder=encoder_config(hf),
            num_labels=len(labels) if labels else int(hf.get("num_labels", 2)),
            problem_type=hf.get("problem_type"), labels=labels)

    def key_rules(config: ImageClassifierConfig) -> list[KeyRule]:
        return [
            *image_preprocessor("perceiver.preprocessor", "perceiver.input_preprocessor", config.image),
            *encoder("perceiver.encoder", "perceiver", config.encoder.num_self_attends_per_block),
            *decoder("perceiver.decoder", "perceiver.decoder.decoder"),
        ]

    return Architecture("image-classification", config_from_hf, key_rules)


def _flow_config(hf: dict[str, Any]) -> OpticalFlowConfig:
    train_size = tuple(int(v) for v in _get(hf, "train_size"))
    overlap = min(OpticalFlowConfig.tile_overlap, min(train_size) // 4)  # small test models have small tiles
    return OpticalFlowConfig(train_size=train_size, encoder=encoder_config(hf), tile_overlap=overlap)  # type: ignore[arg-type]


def _flow_rules(config: OpticalFlowConfig) -> list[KeyRule]:
    return [
        *image_preprocessor("perceiver.preprocessor", "perceiver.input_preprocessor", config.image_config()),
        *encoder("perceiver.encoder", "perceiver", config.encoder.num_self_attends_per_block),
        *decoder("perceiver.decoder", "perceiver.decoder.decoder", trainable_queries=False),
    ]


def _autoencoder_config(hf: dict[str, Any]) -> MultimodalAutoencoderConfig:
    frames, size = int(_get(hf, "num_frames")), _image_size(hf)
    output_shape = tuple(int(v) for v in _get(hf, "output_shape"))
    if output_shape[1:] != (frames, size, size):
        raise ConfigError(f"output_shape {list(output_shape)} must be [batch, num_frames={frames}, "
                          f"image_size={size}, image_size={size}]: positions are encoded over that grid")
    labels = _label_names(hf)
    return MultimodalAutoencoderConfig(
        num_frames=frames, image_size=size, audio_samples_per_frame=int(_get(hf, "audio_samples_per_frame")),
        samples_per_patch=int(_get(hf, "samples_per_patch")),
        num_labels=len(labels) if labels else int(hf.get("num_labels", 2)),
        label_query_channels=int(_get(hf, "_label_trainable_num_channels")),
        output_num_channels=int(_get(hf, "output_num_channels")), encoder=encoder_config(hf), labels=labels)


def _autoencoder_rules(config: MultimodalAutoencoderConfig) -> list[KeyRule]:
    names = ("audio", "image", "label")
    theirs_pre, ours_pre = "perceiver.input_preprocessor", "perceiver.preprocessor"
    rules = [rule(f"{ours_pre}.padding.{n}", f"{theirs_pre}.padding.{n}") for n in names]
    rules += [rule(f"{ours_pre}.mask.{n}", f"{theirs_pre}.mask.{n}") for n in config.mask_probs]
    rules += encoder("perceiver.encoder", "perceiver", config.encoder.num_self_attends_per_block)
    rules.append(rule("perceiver.decoder.queries.label.encoding.embeddings",
                      "perceiver.decoder.modalities.label.decoder.output_position_encodings.position_embeddings"))
    rules += [rule(f"perceiver.decoder.padding.{n}", f"perceiver.decoder.padding.{n}") for n in names]
    rules += decoder("perceiver.decoder.decoder", "perceiver.decoder.decoder", trainable_queries=False)
    rules += [r for n in names for r in affine(f"perceiver.postprocessor.modalities.{n}.linear",
                                               f"perceiver.output_postprocessor.modalities.{n}.classifier")]
    return rules


#: Transformers' architecture name (``config.json: architectures[0]``) → conversion.
ARCHITECTURES: dict[str, Architecture] = {
    "PerceiverForMaskedLM": Architecture("masked-lm", _mlm_config, _mlm_rules),
    "PerceiverForSequenceClassification": Architecture("text-classification", _classifier_config, _classifier_rules),
    **{name: _image_classifier(name) for name in _IMAGE_PREPROCESSORS},
    "PerceiverForOpticalFlow": Architecture("optical-flow", _flow_config, _flow_rules),
    "PerceiverForMultimodalAutoencoding": Architecture("multimodal-autoencoding", _autoencoder_config,
                                                       _autoencoder_rules),
}


def architecture_of(hf: dict[str, Any], where: str) -> tuple[str, Architecture]:
    """The architecture named by a Transformers config dict, with a clear error when unsupported."""
    if hf.get("model_type") not in (None, "perceiver"):
        raise ConfigError(f"{where}: model_type is {hf.get('model_type')!r}, expected 'perceiver'")
    names = hf.get("architectures") or []
    if not names:
        raise ConfigError(f"{where}: config.json names no architecture; expected one of {sorted(ARCHITECTURES)}")
    name = names[0]
    if name not in ARCHITECTURES:
        raise ConfigError(f"{where}: architecture {name!r} is not supported; expected one of {sorted(ARCHITECTURES)}")
    return name, ARCHITECTURES[name]
