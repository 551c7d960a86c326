"""Files shipped inside the package: the training configs (``configs/*.yaml``), the small trained models
(``models/<name>/``) and the ImageNet class names.

They live in the package (not beside it in the repository) so that a wheel carries them and they are found by
name from any directory: ``perceiverkit train --config digits``, ``from_pretrained("fashion-mnist-classifier")``.
Found through :mod:`importlib.resources`, which serves an installed wheel and an editable checkout alike.
"""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

__all__ = ["packaged_config", "packaged_config_names", "packaged_model", "packaged_model_names", "resolve_config"]

_CONFIG_SUFFIX = ".yaml"


def _directory(name: str) -> Path:
    # The package is always installed as plain files (zip-safe = false), so as_file returns the real folder.
    with as_file(files(__name__) / name) as path:
        return Path(path)


def packaged_config_names() -> list[str]:
    """The names of the shipped training configs (``digits``, ``fashion-mnist``, …), sorted."""
    return sorted(path.stem for path in _directory("configs").glob(f"*{_CONFIG_SUFFIX}"))


def packaged_model_names() -> list[str]:
    """The names of the shipped models (``byte-mlm``, ``fashion-mnist-classifier``, …), sorted."""
    return sorted(path.name for path in _directory("models").iterdir() if path.is_dir())


def packaged_config(name: str) -> Path:
    """The file of the shipped training config ``name`` (``digits`` or ``digits.yaml``)."""
    path = _directory("configs") / (name if name.endswith(_CONFIG_SUFFIX) else name + _CONFIG_SUFFIX)
    if not path.is_file():
        raise FileNotFoundError(f"no packaged config named {name!r}; expected one of: "
                                + ", ".join(packaged_config_names()))
    return path


def packaged_model(name: str) -> Path | None:
    """The folder of the shipped model ``name``, or None when no model of that name is shipped."""
    path = _directory("models") / name
    return path if "/" not in name and (path / "perceiverkit.json").is_file() else None


def resolve_config(config: str) -> Path:
    """A ``--config`` value as a file: an existing path as given, else a packaged config's name (``digits``)."""
    path = Path(config).expanduser()
    if path.exists() or path.suffix or "/" in config or "\\" in config:
        return path  # a path: a missing one is reported where it is read, with its name
    return packaged_config(config)
