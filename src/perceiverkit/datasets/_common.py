"""Helpers shared by the dataset loaders: the "data missing" error and small file utilities."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Union

from ..errors import PerceiverKitError

__all__ = ["DataMissingError", "PathLike", "read_maybe_gzip", "require_dir", "require_file"]

PathLike = Union[str, "os.PathLike[str]"]

# gzip streams always start with these two bytes; sniffing them (rather than trusting the
# file name) lets the readers accept both compressed and uncompressed copies under any name.
_GZIP_MAGIC = b"\x1f\x8b"


class DataMissingError(PerceiverKitError, FileNotFoundError):
    """A dataset's files are not where they were looked for.

    The message names the path that was searched and, for the system data sets, the Debian
    package that provides the files. ``path`` and ``package`` are kept as attributes.
    """

    def __init__(self, what: str, path: PathLike, package: str | None = None, override: str | None = None) -> None:
        self.path = Path(path)
        self.package = package
        message = f"{what} not found: looked in {self.path}."
        if package is not None:
            message += f" Install it with `apt-get install {package}`"
            message += f", or pass {override}= pointing at a copy." if override else "."
        elif override is not None:
            message += f" Pass {override}= pointing at the data."
        super().__init__(message)


def require_file(path: PathLike, what: str, package: str | None = None, override: str | None = None) -> Path:
    """Return ``path`` as a :class:`Path` if it is an existing file, else raise :class:`DataMissingError`."""
    p = Path(path)
    if not p.is_file():
        raise DataMissingError(what, p, package, override)
    return p


def require_dir(path: PathLike, what: str, package: str | None = None, override: str | None = None) -> Path:
    """Return ``path`` as a :class:`Path` if it is an existing directory, else raise :class:`DataMissingError`."""
    p = Path(path)
    if not p.is_dir():
        raise DataMissingError(what, p, package, override)
    return p


def read_maybe_gzip(path: PathLike) -> bytes:
    """Read a file's bytes, decompressing it first if it is gzip-compressed (detected by content)."""
    p = Path(path)
    with open(p, "rb") as f:
        data = f.read()
    if data[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:  # truncated or corrupt stream
            raise ValueError(f"{p}: corrupt gzip data ({exc})") from exc
    return data
