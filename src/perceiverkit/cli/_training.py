"""What the life-cycle commands (``fit``/``train``, ``validate``, ``test``) share: the config arguments, the
listing of every setting in ``--help``, and reading the config with the checks that need no Lightning.

Nothing here imports torch: ``--help`` and a config error answer at once (the error before torch and
Lightning load, see :func:`load_config`).
"""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
import types
import typing
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..train.config import TrainConfig

TASKS_HELP = ("masked-lm (mlm), text-classification, image-classification, optical-flow, multimodal-autoencoding, "
              "point-cloud-classification or causal-lm (default: the config's)")


def _config_names() -> list[str]:
    from ..resources import packaged_config_names

    return packaged_config_names()


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``TASK``, ``--config`` and ``--set``, and the list of every setting as the help's epilog."""
    parser.add_argument("task", nargs="?", help=TASKS_HELP)
    parser.add_argument("--config", help="YAML training config: a path, or the name of a packaged one ("
                        + ", ".join(_config_names()) + ")")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override settings, e.g. optim.lr=3e-4 trainer.max_steps=500 data.batch_size=64 "
                             "(every setting is listed below)")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = settings_help()


def settings_help() -> str:
    """Every setting of a training config, as ``--help`` lists it: its path, type, default and description."""
    from ..train.config import TrainConfig

    lines = ["settings (YAML keys of --config, or --set PATH=VALUE):"]
    for path, kind, default, description in setting_rows(TrainConfig):
        lines.append(f"  {path} = {default}  ({kind})")
        lines.extend(textwrap.wrap(description, width=100, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(lines)


def setting_rows(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(path, type in words, default as YAML writes it, description) for every field of config dataclass ``cls``,
    nested dataclasses (also optional ones, e.g. ``trainer.early_stopping``) expanded into their fields."""
    from ..config import describe_type, field_descriptions

    rows = []
    hints = typing.get_type_hints(cls)
    descriptions = field_descriptions(cls)
    for item in dataclasses.fields(cls):
        path = f"{prefix}{item.name}"
        hint = hints[item.name]
        nested = _nested_dataclass(hint)
        if nested is not None and nested is hint:
            rows.extend(setting_rows(nested, f"{path}."))
            continue
        rows.append((path, describe_type(hint), _default_text(item), descriptions.get(item.name, "")))
        if nested is not None:  # optional: listed itself (default null) and then its fields
            rows.extend(setting_rows(nested, f"{path}."))
    return rows


def _nested_dataclass(hint: Any) -> type | None:
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) \
        else (hint,)
    found = [o for o in options if dataclasses.is_dataclass(o) and isinstance(o, type)]
    return found[0] if len(found) == 1 and len([o for o in options if o is not type(None)]) == 1 else None


def _default_text(item: dataclasses.Field[Any]) -> str:
    import json

    if item.default is not dataclasses.MISSING:
        value = item.default
    elif item.default_factory is not dataclasses.MISSING:
        value = item.default_factory()
    else:
        return "(required)"
    return json.dumps(value) if not isinstance(value, str) or not value else value


def load_config(args: argparse.Namespace) -> TrainConfig:
    """The config of ``--config``, ``TASK`` and ``--set``, every value checked against its type and range; then the
    checks that need the task registry (task, data source, model config: torch, but not Lightning)."""
    from ..resources import resolve_config
    from ..train.config import load_train_config

    path = None if args.config is None else resolve_config(args.config)
    overrides = list(args.set)
    if getattr(args, "overwrite", False):
        overrides.append("overwrite=true")
    return load_train_config(args.task, path, overrides)


def check_config(config: TrainConfig) -> None:
    from ..train.config import check_task_settings

    check_task_settings(config)
