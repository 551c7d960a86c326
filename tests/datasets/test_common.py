from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from perceiverkit.datasets import DataMissingError
from perceiverkit.datasets._common import read_maybe_gzip, require_dir, require_file


def test_data_missing_message(tmp_path: Path) -> None:
    error = DataMissingError("Thing", tmp_path / "x", "some-package", "root")
    assert str(error) == (
        f"Thing not found: looked in {tmp_path / 'x'}. Install it with `apt-get install some-package`, "
        "or pass root= pointing at a copy."
    )
    assert isinstance(error, FileNotFoundError) and error.package == "some-package" and error.path == tmp_path / "x"
    assert str(DataMissingError("Thing", "/a")) == "Thing not found: looked in /a."


def test_require_helpers(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert require_file(tmp_path / "f", "file") == tmp_path / "f"
    assert require_dir(tmp_path, "dir") == tmp_path
    with pytest.raises(DataMissingError, match="apt-get install pkg"):
        require_file(tmp_path, "file", "pkg")  # a directory is not a file
    with pytest.raises(DataMissingError):
        require_dir(tmp_path / "f", "dir")


def test_read_maybe_gzip(tmp_path: Path) -> None:
    (tmp_path / "plain.gz").write_bytes(b"not compressed")  # content decides, not the name
    (tmp_path / "packed").write_bytes(gzip.compress(b"compressed"))
    assert read_maybe_gzip(tmp_path / "plain.gz") == b"not compressed"
    assert read_maybe_gzip(tmp_path / "packed") == b"compressed"
    (tmp_path / "cut").write_bytes(gzip.compress(b"compressed" * 100)[:20])
    with pytest.raises(ValueError, match="corrupt gzip"):
        read_maybe_gzip(tmp_path / "cut")
