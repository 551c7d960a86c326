"""Data sets kept with Hugging Face ``datasets`` (the ``[datasets]`` extra): local Arrow, Parquet, CSV or JSON
files, a folder saved with ``save_to_disk``, or a hub name when a network exists.

Every split comes back as a ``datasets.Dataset`` backed by memory-mapped Arrow files: rows are read from disk
when asked for, so a data set larger than memory costs only its pages in use. Parquet, CSV and JSON files are
converted once into Arrow files under ``cache_dir`` (``datasets``' cache by default); ``.arrow`` files and
``save_to_disk`` folders are mapped where they lie.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._common import DataMissingError
from .streaming import JoinedBytes

if TYPE_CHECKING:
    import datasets

__all__ = ["BUILDERS", "ArrowTextBytes", "check_columns", "class_names", "hub_reachable", "image_payloads",
           "load_splits"]

#: File suffix → the ``datasets`` builder that reads it.
BUILDERS: dict[str, str] = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json",
                            ".arrow": "arrow", ".txt": "text"}
_INSTALL = 'the hf-dataset source needs the optional extra datasets: pip install "perceiverkit[datasets]"'


def _datasets() -> Any:  # Any: the module, imported only when this source is used
    try:
        import datasets
    except ImportError as error:
        raise ImportError(_INSTALL, name="datasets") from error
    return datasets


def _builder(files: Sequence[Path]) -> str:
    kinds = {BUILDERS.get(p.suffix.lower()) for p in files}
    if None in kinds or len(kinds) != 1:
        raise ValueError(f"cannot tell how to read {[str(p) for p in files]}: give files of one kind, "
                         f"{', '.join(sorted(BUILDERS))}")
    return str(kinds.pop())


def load_splits(path: Path | str, *, local: bool, name: str | None = None,
                data_files: Mapping[str, Sequence[Path]] | None = None,
                cache_dir: Path | None = None) -> dict[str, datasets.Dataset]:
    """Every split of a data set, by name.

    - ``data_files`` (split name → files): those files, read by the builder their suffix names;
    - ``path`` a folder saved with ``save_to_disk``: its splits (a single saved ``Dataset`` is ``train``);
    - ``path`` an ``.arrow`` file: memory-mapped as it is, as ``train``;
    - ``path`` a ``.parquet``/``.csv``/``.json``/``.jsonl`` file: ``train``;
    - ``path`` a folder of such files: split names from the file names (``train.csv``, ``test.csv``, …,
      ``datasets``' convention);
    - otherwise (``local`` false) a data set name on the Hugging Face hub, with configuration ``name``.
    """
    ds = _datasets()
    common: dict[str, Any] = {"cache_dir": str(cache_dir) if cache_dir is not None else None}
    if data_files:
        files = {split: [str(p) for p in paths] for split, paths in data_files.items()}
        every = [p for paths in data_files.values() for p in paths]
        for p in every:
            if not p.is_file():
                raise DataMissingError("a data file of data.options.data_files", p)
        loaded = ds.load_dataset(_builder(every), data_files=files, **common)
    elif local:
        p = Path(path)
        if p.is_dir() and ((p / "dataset_dict.json").is_file() or (p / "state.json").is_file()):
            loaded = ds.load_from_disk(str(p))
        elif p.is_file() and p.suffix.lower() == ".arrow":
            loaded = {"train": ds.Dataset.from_file(str(p))}
        elif p.is_file():
            loaded = ds.load_dataset(_builder([p]), data_files={"train": str(p)}, **common)
        elif p.is_dir():
            loaded = ds.load_dataset(str(p), **common)
        else:
            raise DataMissingError("the data set", p, override="data.options.path")
    else:
        if not ds.config.HF_HUB_OFFLINE and not hub_reachable():
            # Without this, datasets retries for ~30 s, printing a warning a try, before giving up: a mistyped
            # local path (data/reviewz) reads as a hub name, so this is mostly what a typo costs.
            raise ValueError(f"no local data set at {path!r} and the hub cannot provide one (no connection to "
                             f"{_hub_endpoint()}); give a path to local files")
        try:
            loaded = ds.load_dataset(str(path), name, **common)
        except Exception as error:  # the hub's many failures (no network, no such name) all end the run here
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(f"no local data set at {path!r} and the hub cannot provide one ({first}); "
                             "give a path to local files") from None
    if isinstance(loaded, ds.Dataset):
        return {"train": loaded}
    return dict(loaded)


def _hub_endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub's endpoint opens within ``timeout`` seconds. Behind a proxy (the
    ``*_PROXY`` variables) a direct connection says nothing, so the answer is then yes, and ``datasets`` tries."""
    import os
    import socket
    from urllib.parse import urlsplit

    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlsplit(_hub_endpoint())
    try:
        socket.create_connection((url.hostname or "", url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=timeout).close()
    except OSError:  # no route, no DNS, refused, timed out
        return False
    return True


def check_columns(dataset: datasets.Dataset, columns: Mapping[str, str], where: str) -> None:
    """Refuse a split that lacks one of ``columns`` (option name → column name), naming the columns it has."""
    for option, column in columns.items():
        if column not in dataset.column_names:
            raise ValueError(f"{where} has no column {column!r} (columns: {dataset.column_names}); set "
                             f"data.options.{option} to one of them")


def class_names(dataset: datasets.Dataset, column: str) -> tuple[list[str], dict[Any, int] | None]:
    """The class names of a label column, and the map from its values to class indices (None when the column
    already holds indices: a ``ClassLabel``, whose names are kept in order). Other values (strings, integers)
    become classes in sorted order."""
    ds = _datasets()
    feature = dataset.features[column]
    if isinstance(feature, ds.ClassLabel):
        return list(feature.names), None
    values = dataset.unique(column)
    if any(isinstance(v, bool) or not isinstance(v, (str, int)) for v in values):
        raise ValueError(f"column {column!r} holds {type(values[0]).__name__} labels; expected strings, integers "
                         "or a ClassLabel")
    if len({type(v) for v in values}) > 1:
        raise ValueError(f"column {column!r} mixes strings and integers; use one kind")
    ordered = sorted(values)
    return [str(v) for v in ordered], {v: i for i, v in enumerate(ordered)}


def image_payloads(dataset: datasets.Dataset, column: str, batch: int = 256) -> Iterator[tuple[int, Any]]:
    """``(row, bytes or path)`` of every image of an ``Image`` column, read from the Arrow table a batch at a
    time without decoding (for header checks)."""
    table = dataset.with_format("arrow")
    for first in range(0, len(dataset), batch):
        chunk = table[first:first + batch][column]
        for offset, item in enumerate(chunk.to_pylist()):
            payload = item if not isinstance(item, dict) else (item.get("bytes") or item.get("path"))
            yield first + offset, payload


class ArrowTextBytes(JoinedBytes):
    """A text column as one UTF-8 stream, rows separated by a blank line; lengths are read from the Arrow
    column (8 bytes a row in memory), texts one row at a time."""

    def __init__(self, dataset: datasets.Dataset, column: str) -> None:
        import pyarrow.compute as pc

        self.dataset, self.column = dataset, column
        table = dataset.with_format("arrow")
        lengths = [pc.binary_length(table[first:first + 65536][column].fill_null("")).to_numpy()
                   for first in range(0, len(dataset), 65536)]
        super().__init__(np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64))

    def read_piece(self, index: int, start: int, end: int) -> bytes:
        return str(self.dataset[index][self.column] or "").encode("utf-8")[start:end]
