"""Which exceptions the command line reports in one line, and which it leaves to show their traceback.

One line: the library's own errors (:class:`~perceiverkit.errors.PerceiverKitError`), ``OSError`` (a path that
is missing or unreadable), a ``ValueError`` or ``ImportError`` that perceiverkit's own code raised with a
``raise`` statement (the library reports bad input that way: "must contain at least one [MASK]"), and a missing
module of an optional extra, named with the ``pip install`` that brings it. Anything else is a bug and keeps
its traceback: a ``TypeError``, an ``ImportError`` of a core module, a ``ValueError`` from inside torch or from
unpacking the wrong number of values.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from ..errors import PerceiverKitError

#: Top-level module → the extra of pyproject.toml that installs it (the narrowest extra when several do).
OPTIONAL_MODULES: dict[str, str] = {
    "lightning": "train", "tensorboard": "train", "yaml": "train",
    "av": "media", "skvideo": "media",
    "cv2": "baselines", "skimage": "baselines", "sklearn": "baselines",
    "onnx": "onnx", "onnxruntime": "onnx", "onnxscript": "onnx",
    "transformers": "bench", "matplotlib": "bench",
}
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def missing_extra(error: ImportError) -> tuple[str, str] | None:
    """(module, extra) when ``error`` (or the import failure it was raised from) is a missing optional module."""
    seen: BaseException | None = error
    while seen is not None:
        name = getattr(seen, "name", None)
        if isinstance(seen, ImportError) and name and name.split(".")[0] in OPTIONAL_MODULES:
            module = name.split(".")[0]
            return module, OPTIONAL_MODULES[module]
        seen = seen.__cause__ or seen.__context__  # `raise ImportError(...) from None` keeps the context
    return None


def raised_by_library(error: BaseException) -> bool:
    """Whether ``error`` comes from a ``raise`` statement in perceiverkit's own code (not from a library it calls,
    nor from an implicit failure such as unpacking)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return False
    origin = frames[-1]
    return Path(origin.filename).resolve().is_relative_to(PACKAGE_DIR) and (origin.line or "").startswith("raise")


def one_line_message(error: Exception) -> str | None:
    """The one line to print for ``error``, or None when it is a bug whose traceback should show."""
    if isinstance(error, ImportError) and (found := missing_extra(error)):
        module, extra = found
        return f'needs the optional extra {extra} ({module} is not installed): pip install "perceiverkit[{extra}]"'
    if isinstance(error, (PerceiverKitError, OSError)):
        return str(error)
    if isinstance(error, (ValueError, ImportError)) and raised_by_library(error):
        return str(error)
    return None
