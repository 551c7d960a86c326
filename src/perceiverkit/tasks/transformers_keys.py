"""Building blocks of the Transformers mappings each task declares next to its model.

A task's mapping has two halves: a config converter (Transformers' ``config.json`` dict → our config
dataclass, and back) and a key table (our parameter names ← Transformers' tensor names; saving reads it
backwards). This module holds what every task's mapping shares: Transformers' config defaults, the encoder
config both ways, the one-line refusal of what Transformers cannot express, and key tables block by block.
A :class:`KeyRule` says which source tensor(s) fill one of our parameters; several sources are concatenated
along the first axis (how separate query/key/value projections become one fused projection). Tables are built
from small per-block functions so that every architecture's table reads as the model's structure.
:mod:`perceiverkit.checkpoints` applies the tables; it finds them through the task registry.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..config import ConfigError, EncoderConfig
from ..processors.image import ImagePreprocessorConfig


@dataclass(frozen=True)
class KeyRule:
    """Our parameter ``target`` is ``sources`` (one key, or several concatenated along dim 0)."""

    target: str
    sources: tuple[str, ...]


def rule(target: str, *sources: str) -> KeyRule:
    return KeyRule(target, sources)


def affine(target: str, source: str) -> list[KeyRule]:
    """Weight and bias of a Linear or LayerNorm."""
    return [rule(f"{target}.weight", f"{source}.weight"), rule(f"{target}.bias", f"{source}.bias")]


def fused(target: str, *sources: str) -> list[KeyRule]:
    """Weight and bias of a fused Linear made of several source Linears stacked along the output axis."""
    return [
        rule(f"{target}.weight", *(f"{s}.weight" for s in sources)),
        rule(f"{target}.bias", *(f"{s}.bias" for s in sources)),
    ]


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


def hf_get(hf: dict[str, Any], key: str) -> Any:
    return hf.get(key, HF_DEFAULTS[key])


def encoder_config(hf: dict[str, Any]) -> EncoderConfig:
    """Our encoder config from a Transformers ``PerceiverConfig`` dict."""
    activation = hf_get(hf, "hidden_act")
    if not isinstance(activation, str):
        raise ConfigError(f"hidden_act must be an activation name, got {activation!r}")
    return EncoderConfig(
        num_latents=hf_get(hf, "num_latents"),
        d_latents=hf_get(hf, "d_latents"),
        num_blocks=hf_get(hf, "num_blocks"),
        num_self_attends_per_block=hf_get(hf, "num_self_attends_per_block"),
        num_self_attention_heads=hf_get(hf, "num_self_attention_heads"),
        num_cross_attention_heads=hf_get(hf, "num_cross_attention_heads"),
        qk_channels=hf_get(hf, "qk_channels"),
        v_channels=hf_get(hf, "v_channels"),
        cross_attention_shape_for_attention=hf_get(hf, "cross_attention_shape_for_attention"),
        self_attention_widening_factor=hf_get(hf, "self_attention_widening_factor"),
        cross_attention_widening_factor=hf_get(hf, "cross_attention_widening_factor"),
        use_query_residual=bool(hf_get(hf, "use_query_residual")),
        activation=activation,
        attention_dropout=float(hf_get(hf, "attention_probs_dropout_prob")),
    )


def encoder_to_hf(encoder: EncoderConfig) -> dict[str, Any]:
    """Transformers' ``PerceiverConfig`` fields of our encoder config (the inverse of :func:`encoder_config`)."""
    # Transformers' self-attention keeps its value width after the output projection, so only a value width equal
    # to the latents' adds up in its residual; ours projects back to d_latents, whatever the value width.
    self_v = encoder.v_channels or encoder.qk_channels or encoder.d_latents
    if self_v != encoder.d_latents:
        raise ConfigError(f"EncoderConfig.v_channels is {encoder.v_channels!r}, a self-attention value width of "
                          f"{self_v}, but Transformers' Perceiver needs it equal to d_latents={encoder.d_latents}; "
                          "this model cannot be saved in Transformers' format")
    return {
        "num_latents": encoder.num_latents,
        "d_latents": encoder.d_latents,
        "num_blocks": encoder.num_blocks,
        "num_self_attends_per_block": encoder.num_self_attends_per_block,
        "num_self_attention_heads": encoder.num_self_attention_heads,
        "num_cross_attention_heads": encoder.num_cross_attention_heads,
        "qk_channels": encoder.qk_channels,
        "v_channels": encoder.v_channels,
        "cross_attention_shape_for_attention": encoder.cross_attention_shape_for_attention,
        "self_attention_widening_factor": encoder.self_attention_widening_factor,
        "cross_attention_widening_factor": encoder.cross_attention_widening_factor,
        "use_query_residual": encoder.use_query_residual,
        "hidden_act": encoder.activation,
        "attention_probs_dropout_prob": encoder.attention_dropout,
    }


def labels_to_hf(num_labels: int, labels: tuple[str, ...] | None, problem_type: str | None) -> dict[str, Any]:
    """Transformers' classifier fields: ``num_labels`` and, when the classes are named, ``id2label``/``label2id``."""
    fields: dict[str, Any] = {"num_labels": num_labels}
    if labels:
        fields["id2label"] = {str(i): name for i, name in enumerate(labels)}
        fields["label2id"] = {name: i for i, name in enumerate(labels)}
    if problem_type is not None:
        fields["problem_type"] = problem_type
    return fields


def hf_config(architecture: str, **fields: Any) -> dict[str, Any]:
    """A Transformers ``config.json`` dict for ``architecture``."""
    return {"architectures": [architecture], "model_type": "perceiver", **fields}


def require(field_name: str, value: object, expected: object, architecture: str) -> None:
    """Refuse, in one line naming the field, a value that Transformers' ``architecture`` hard-codes otherwise."""
    if value != expected:
        raise ConfigError(f"{field_name} is {value!r}, but Transformers' {architecture} has no such setting "
                          f"(it is fixed at {expected!r}); this model cannot be saved in Transformers' format")


def require_fields(config: object, fixed: object, names: tuple[str, ...], architecture: str) -> None:
    """:func:`require` for each named field of ``config``: it must equal ``fixed``'s, the config Transformers'
    ``architecture`` hard-codes."""
    for name in names:
        require(f"{type(config).__name__}.{name}", getattr(config, name), getattr(fixed, name), architecture)


def require_same(field_name: str, value: object, expected: object, architecture: str) -> None:
    """:func:`require`, field by field through nested config dataclasses, so the refusal names the leaf field."""
    if dataclasses.is_dataclass(value) and type(value) is type(expected):
        for f in dataclasses.fields(value):
            require_same(f"{field_name}.{f.name}", getattr(value, f.name), getattr(expected, f.name), architecture)
    else:
        require(field_name, value, expected, architecture)


def label_names(hf: dict[str, Any]) -> tuple[str, ...] | None:
    id2label = hf.get("id2label")
    if not id2label:
        return None
    return tuple(str(id2label[k]) for k in sorted(id2label, key=int))


def num_labels(hf: dict[str, Any], labels: tuple[str, ...] | None) -> int:
    """The number of classes: one per named label, else ``num_labels`` (Transformers' default 2)."""
    return len(labels) if labels else int(hf.get("num_labels", 2))


def image_size(hf: dict[str, Any]) -> int:
    """The square ``image_size`` of a Transformers config (a list of equal sides is accepted)."""
    size = hf_get(hf, "image_size")
    if isinstance(size, (list, tuple)):
        if len(set(size)) != 1:
            raise ConfigError(f"image_size must be square, got {size}")
        size = size[0]
    return int(size)


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
        rules.append(rule(f"{ours}.queries.encoding.embeddings",
                          f"{theirs}.output_position_encodings.position_embeddings"))
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
