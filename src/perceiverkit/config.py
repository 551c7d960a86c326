"""Dataclass configurations for the architecture's parts, with validation and JSON round-trips.

Field names follow Transformers' ``PerceiverConfig`` where a concept is shared, so that converted checkpoints
read naturally; everything that Transformers hard-codes inside its model classes is an explicit field here.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from .errors import PerceiverKitError
from .layers.mlp import ACTIVATIONS

PositionKind = Literal["trainable", "fourier"]
GridKind = Literal["linspace", "fraction"]
ShapeForAttention = Literal["kv", "q"]

POSITION_KINDS: tuple[str, ...] = typing.get_args(PositionKind)
SHAPES_FOR_ATTENTION: tuple[str, ...] = typing.get_args(ShapeForAttention)


class ConfigError(PerceiverKitError, ValueError):
    """A configuration value is missing, of the wrong type, or inconsistent with another."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_positive(owner: str, **values: int | None) -> None:
    for name, value in values.items():
        if value is not None:
            _check(isinstance(value, int) and not isinstance(value, bool) and value > 0,
                   f"{owner}.{name} must be a positive integer, got {value!r}")


def _check_choice(owner: str, name: str, value: str, choices: tuple[str, ...]) -> None:
    _check(value in choices, f"{owner}.{name} must be one of {list(choices)}, got {value!r}")


@dataclass
class PositionEncodingConfig:
    """Position encoding of an index grid: ``trainable`` vectors or ``fourier`` features.

    ``num_channels`` applies to trainable encodings; ``num_bands``, ``max_resolution``, ``concat_pos`` and
    ``sine_only`` to Fourier ones. ``project_pos_dim`` adds a linear projection of the encoding to that width.
    ``grid`` places Fourier points at ``linspace(-1, 1, n)`` or at ``-1 + 2i/n`` (``"fraction"``, the spacing the
    published autoencoder's decoder was trained with).
    """

    kind: PositionKind = "trainable"
    num_channels: int = 128
    num_bands: int = 64
    max_resolution: tuple[int, ...] | None = None
    concat_pos: bool = True
    sine_only: bool = False
    project_pos_dim: int | None = None
    grid: GridKind = "linspace"

    def validate(self) -> None:
        _check_choice("PositionEncodingConfig", "kind", self.kind, POSITION_KINDS)
        _check_choice("PositionEncodingConfig", "grid", self.grid, typing.get_args(GridKind))
        _check_positive("PositionEncodingConfig", num_channels=self.num_channels, num_bands=self.num_bands,
                        project_pos_dim=self.project_pos_dim)
        if self.kind == "fourier":
            _check(self.max_resolution is not None and len(self.max_resolution) > 0,
                   "PositionEncodingConfig.max_resolution is required for Fourier position encodings")

    def encoding_channels(self, num_dims: int) -> int:
        """Width of the encoding before the optional projection."""
        from .layers.position import fourier_channels

        if self.kind == "trainable":
            return self.num_channels
        return fourier_channels(num_dims, self.num_bands, self.concat_pos, self.sine_only)

    def output_channels(self, num_dims: int) -> int:
        """Width of the encoding after the optional projection."""
        return self.project_pos_dim or self.encoding_channels(num_dims)


@dataclass
class EncoderConfig:
    """The latent array, its cross-attention to the inputs and the shared self-attention stack.

    The ``num_self_attends_per_block`` self-attention layers are applied ``num_blocks`` times with the same
    weights. ``qk_channels``/``v_channels`` default to the query width (self-attention) and to the width chosen
    by ``cross_attention_shape_for_attention`` (cross-attention: ``"kv"`` = input width, ``"q"`` = latent width).
    """

    num_latents: int = 256
    d_latents: int = 1280
    num_blocks: int = 1
    num_self_attends_per_block: int = 26
    num_self_attention_heads: int = 8
    num_cross_attention_heads: int = 8
    qk_channels: int | None = None
    v_channels: int | None = None
    cross_attention_shape_for_attention: ShapeForAttention = "kv"
    self_attention_widening_factor: int = 1
    cross_attention_widening_factor: int = 1
    use_query_residual: bool = True
    activation: str = "gelu"
    attention_dropout: float = 0.1

    def validate(self) -> None:
        _check_positive(
            "EncoderConfig", num_latents=self.num_latents, d_latents=self.d_latents, num_blocks=self.num_blocks,
            num_self_attends_per_block=self.num_self_attends_per_block,
            num_self_attention_heads=self.num_self_attention_heads,
            num_cross_attention_heads=self.num_cross_attention_heads, qk_channels=self.qk_channels,
            v_channels=self.v_channels, self_attention_widening_factor=self.self_attention_widening_factor,
            cross_attention_widening_factor=self.cross_attention_widening_factor,
        )
        _check_choice("EncoderConfig", "cross_attention_shape_for_attention",
                      self.cross_attention_shape_for_attention, SHAPES_FOR_ATTENTION)
        _check_choice("EncoderConfig", "activation", self.activation, tuple(sorted(ACTIVATIONS)))
        _check(0.0 <= self.attention_dropout < 1.0,
               f"EncoderConfig.attention_dropout must be in [0, 1), got {self.attention_dropout!r}")


@dataclass
class DecoderConfig:
    """A cross-attention decoder: output queries attend to the latents.

    Queries are built from a position encoding of the ``output_index_dims`` grid (optionally projected, and
    optionally concatenated after the preprocessed inputs), or supplied by the caller when ``queries`` is None.
    ``query_channels`` is the width of the queries; it is checked against what ``queries`` produces.
    """

    output_index_dims: tuple[int, ...]
    query_channels: int
    output_channels: int | None = None
    queries: PositionEncodingConfig | None = field(default_factory=PositionEncodingConfig)
    concat_preprocessed_input: bool = False
    qk_channels: int | None = None
    v_channels: int | None = None
    num_heads: int = 1
    widening_factor: int = 1
    use_query_residual: bool = False
    final_project: bool = True
    cross_attention_shape_for_attention: ShapeForAttention = "kv"
    activation: str = "gelu"
    attention_dropout: float = 0.1

    def validate(self) -> None:
        _check(len(self.output_index_dims) > 0, "DecoderConfig.output_index_dims must not be empty")
        for dim in self.output_index_dims:
            _check_positive("DecoderConfig", output_index_dims=dim)
        _check_positive("DecoderConfig", query_channels=self.query_channels, output_channels=self.output_channels,
                        qk_channels=self.qk_channels, v_channels=self.v_channels, num_heads=self.num_heads,
                        widening_factor=self.widening_factor)
        _check(not self.final_project or self.output_channels is not None,
               "DecoderConfig.output_channels is required when final_project is True")
        _check_choice("DecoderConfig", "cross_attention_shape_for_attention",
                      self.cross_attention_shape_for_attention, SHAPES_FOR_ATTENTION)
        _check_choice("DecoderConfig", "activation", self.activation, tuple(sorted(ACTIVATIONS)))
        if self.queries is not None:
            self.queries.validate()

    @property
    def out_channels(self) -> int:
        """Width of the decoder's output."""
        return self.output_channels if self.final_project else self.query_channels  # type: ignore[return-value]


# --- JSON round-trips --------------------------------------------------------------------------------------

C = TypeVar("C")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) config dataclass."""
    return dataclasses.asdict(config)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)]
        return _coerce(value, inner[0], where) if len(inner) == 1 else value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping for {hint.__name__}, got {type(value).__name__}")
        return config_from_dict(hint, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(value)
    return value


def config_from_dict(cls: type[C], data: dict[str, Any], where: str | None = None) -> C:
    """Build config dataclass ``cls`` from ``data``, rejecting unknown keys by name and validating the result."""
    where = where or cls.__name__
    # A config may list the names its fields had in files written before a rename, as ``renamed_fields``.
    renamed: dict[str, str] = getattr(cls, "renamed_fields", {})
    clashes = sorted(old for old, new in renamed.items() if old in data and new in data)
    if clashes:
        raise ConfigError(f"{where}: {clashes} are old names of {[renamed[old] for old in clashes]}; give one name")
    data = {renamed.get(key, key): value for key, value in data.items()}
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; expected some of {sorted(names)}")
    kwargs = {key: _coerce(value, hints[key], f"{where}.{key}") for key, value in data.items()}
    try:
        config = cls(**kwargs)
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from None
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config
