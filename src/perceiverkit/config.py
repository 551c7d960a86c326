"""Dataclass configurations for the architecture's parts, with validation and JSON round-trips.

Field names follow Transformers' ``PerceiverConfig`` where a concept is shared, so that converted checkpoints
read naturally; everything that Transformers hard-codes inside its model classes is an explicit field here.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from .errors import PerceiverKitError

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


def _activations() -> tuple[str, ...]:
    # Imported here, not at the top: layers/ imports torch, and a training config is checked before torch loads
    # (a typo on the command line answers at once).
    from .layers.mlp import ACTIVATIONS

    return tuple(sorted(ACTIVATIONS))


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
        _check_choice("EncoderConfig", "activation", self.activation, _activations())
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
        _check_choice("DecoderConfig", "activation", self.activation, _activations())
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


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def describe_type(hint: Any) -> str:
    """``hint`` in words, as an error message or a field listing says it: ``an int``, ``a list of 2 numbers``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        return "any value"
    if origin in (typing.Union, types.UnionType):
        options = [describe_type(a) for a in args if a is not type(None)]
        text = " or ".join(options)
        return f"{text} or null" if type(None) in args else text
    if origin is Literal:
        return f"one of {list(args)}"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}"
        if args:
            kinds = {describe_type(a) for a in args}
            return f"a list of {len(args)} {_plural(args[0])}" if len(kinds) == 1 else \
                f"a list of [{', '.join(describe_type(a) for a in args)}]"
        return "a list"
    if origin is list:
        return f"a list of {_plural(args[0])}" if args else "a list"
    if origin is dict or hint is dict:
        return "a mapping"
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return f"a mapping of {hint.__name__} fields"
    return _SIMPLE.get(hint, f"a {getattr(hint, '__name__', hint)}")


_SIMPLE: dict[Any, str] = {int: "an int", float: "a number", bool: "true or false", str: "a string"}
_PLURALS: dict[Any, str] = {int: "ints", float: "numbers", bool: "booleans", str: "strings"}


def _plural(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_plural(a) for a in typing.get_args(hint) if a is not type(None))
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return f"mappings of {hint.__name__} fields"
    return _PLURALS.get(hint, describe_type(hint))


def _wrong(value: Any, hint: Any, where: str) -> ConfigError:
    return ConfigError(f"{where} must be {describe_type(hint)}, got {value!r}")


def _number(value: Any) -> float | None:
    """``value`` as a float when it is one: a number (not a bool), or a string that reads as one (YAML 1.1 reads
    ``3e-4`` as a string)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against the annotation ``hint`` (lists become tuples where a tuple is expected, ints
    become floats where a float is); anything else is a one-line :class:`ConfigError` naming ``where``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(value, option, where)
            except ConfigError as error:
                errors.append((option, error))
        # A mapping or list that fits one option's shape gets that option's own, more precise, message.
        shaped = [error for option, error in errors if _same_shape(value, option)]
        if len(shaped) == 1:
            raise shaped[0]
        raise _wrong(value, hint, where)
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _wrong(value, hint, where)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise _wrong(value, hint, where)
        return config_from_dict(hint, value, where)
    if origin is tuple or origin is list:
        if not isinstance(value, (list, tuple)):
            raise _wrong(value, hint, where)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise _wrong(value, hint, where)
            items = [_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))]
        else:
            items = [_coerce(v, args[0], f"{where}[{i}]") if args else v for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise _wrong(value, hint, where)
        if not args:
            return dict(value)
        return {_coerce(k, args[0], f"{where} key"): _coerce(v, args[1], _join(where, str(k)))
                for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _wrong(value, hint, where)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():  # 1e3 on a command line
            return int(value)
        raise _wrong(value, hint, where)
    if hint is float:
        number = _number(value)
        if number is None:
            raise _wrong(value, hint, where)
        return number
    if hint is str:
        if isinstance(value, str):
            return value
        raise _wrong(value, hint, where)
    if isinstance(hint, type) and not isinstance(value, hint):
        raise _wrong(value, hint, where)
    return value


def _same_shape(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if isinstance(value, dict):
        return dataclasses.is_dataclass(hint) or origin is dict or hint is dict
    if isinstance(value, (list, tuple)):
        return origin in (list, tuple)
    return False


def config_from_dict(cls: type[C], data: dict[str, Any], where: str | None = None) -> C:
    """Build config dataclass ``cls`` from ``data``: every value is checked against its field's annotation and
    unknown keys are refused, each in one line naming the field's path (``where`` + field; ``where`` defaults to
    the class name, ``""`` gives bare paths such as ``trainer.max_steps``); the result is validated."""
    where = cls.__name__ if where is None else where
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__} must be a mapping of {cls.__name__} fields, got {data!r}")
    # A config may list the names its fields had in files written before a rename, as ``renamed_fields``.
    renamed: dict[str, str] = getattr(cls, "renamed_fields", {})
    clashes = sorted(old for old, new in renamed.items() if old in data and new in data)
    if clashes:
        raise ConfigError(f"{where}: {clashes} are old names of {[renamed[old] for old in clashes]}; give one name")
    data = {renamed.get(key, key): value for key, value in data.items()}
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names), key=str)
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown field {_join(where, str(key))!r}; {hint}expected one of {sorted(names)}")
    kwargs = {key: _coerce(value, hints[key], _join(where, key)) for key, value in data.items()}
    try:
        config = cls(**kwargs)
    except TypeError as error:  # a required field is missing
        raise ConfigError(f"{where or cls.__name__}: {error}") from None
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config


@functools.cache
def field_descriptions(cls: type) -> dict[str, str]:
    """Field name → the docstring written under the field in ``cls``'s source (one line: its first sentence's
    paragraph, whitespace joined); fields without one are absent. Read from the source, so no import of what the
    config configures is needed (``perceiverkit train --help`` lists every field without torch)."""
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # no source (a frozen build): no descriptions rather than a failure
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    found: dict[str, str] = {}
    for node, following in zip(body, [*body[1:], None], strict=True):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(following, ast.Expr) \
                and isinstance(following.value, ast.Constant) and isinstance(following.value.value, str):
            found[node.target.id] = " ".join(following.value.value.split("\n\n")[0].split())
    return found
