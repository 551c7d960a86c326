"""Readers of user files that keep memory flat however large the files are: byte streams read on demand
(text files, documents of CSV/JSONL records) and an index of CSV/JSONL records read one at a time.

Everything here is random access (``read(start, end)``, ``record(i)``), so a map-style dataset built on it keeps
the sampler's exact resume: item ``i`` is the same bytes whether or not the run was interrupted. What stays in
memory is an index: two 8-byte offsets per CSV/JSONL record (plus a 4-byte label code for labelled files, and an
8-byte length for corpora); a ``.txt`` file needs none. Files are opened lazily in each process and closed when
pickled, so data-loader workers open their own handles.
"""

from __future__ import annotations

import abc
import csv
import io
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from ._common import PathLike

__all__ = [
    "RECORD_SUFFIXES",
    "ByteSource",
    "ConcatBytes",
    "MemoryBytes",
    "RecordDocuments",
    "RecordFile",
    "TextFileBytes",
]

#: The separator between documents of a corpus (as :class:`~perceiverkit.datasets.ByteChunks` joins them).
SEPARATOR = b"\n\n"
#: File types read record by record: one JSON object per line, or CSV rows under a header line.
RECORD_SUFFIXES = (".jsonl", ".csv")
_BOM = b"\xef\xbb\xbf"


class ByteSource(Protocol):
    """A byte stream that can be read anywhere without holding all of it."""

    def __len__(self) -> int: ...

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``."""


class MemoryBytes:
    """A byte string already in memory (the small system corpora)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def read(self, start: int, end: int) -> bytes:
        return self.data[start:end]


class TextFileBytes:
    """A text file's bytes as they are on disk (a UTF-8 byte-order mark skipped), read where asked with
    positioned reads. Not memory-mapped: a mapped file's pages count as the process's resident memory as they
    are touched (with the kernel's read-around, about a megabyte per random window), so random windows over a
    2 GB file would make it look 2 GB large; read pages stay in the kernel's page cache instead."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"text file not found: {self.path}")
        with open(self.path, "rb") as f:
            self.offset = len(_BOM) if f.read(len(_BOM)) == _BOM else 0
        self.size = self.path.stat().st_size - self.offset
        if self.size == 0:
            raise ValueError(f"{self.path}: file is empty")
        self._file: IO[bytes] | None = None

    def __len__(self) -> int:
        return self.size

    def read(self, start: int, end: int) -> bytes:
        if self._file is None:
            self._file = open(self.path, "rb")  # kept open for the next read; dropped on pickling
        count = max(0, min(end, self.size) - start)
        if hasattr(os, "pread"):
            return os.pread(self._file.fileno(), count, self.offset + start)
        self._file.seek(self.offset + start)
        return self._file.read(count)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None}  # each process opens the file itself

    def __del__(self) -> None:
        if getattr(self, "_file", None) is not None:
            self._file.close()  # type: ignore[union-attr]


class JoinedBytes(abc.ABC):
    """Pieces of known byte lengths read as one stream, with :data:`SEPARATOR` between consecutive pieces."""

    def __init__(self, lengths: np.ndarray) -> None:
        if len(lengths) == 0:
            raise ValueError("nothing to join")
        spans = lengths.astype(np.int64) + len(SEPARATOR)
        self.starts = np.concatenate([[0], np.cumsum(spans)[:-1]]).astype(np.int64)
        self.lengths = lengths.astype(np.int64)
        self.size = int(self.starts[-1] + self.lengths[-1])

    @abc.abstractmethod
    def read_piece(self, index: int, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of piece ``index``."""

    def __len__(self) -> int:
        return self.size

    def read(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        parts: list[bytes] = []
        piece = int(np.searchsorted(self.starts, start, side="right")) - 1
        position = start
        while position < end:
            offset = position - int(self.starts[piece])
            length = int(self.lengths[piece])
            if offset < length:
                take = min(end - position, length - offset)
                parts.append(self.read_piece(piece, offset, offset + take))
            else:  # inside the separator that follows this piece
                gap = offset - length
                take = min(end - position, len(SEPARATOR) - gap)
                parts.append(SEPARATOR[gap:gap + take])
                if gap + take == len(SEPARATOR):
                    piece += 1
            position += take
        return b"".join(parts)


class ConcatBytes(JoinedBytes):
    """Several byte sources joined by :data:`SEPARATOR`."""

    def __init__(self, sources: Sequence[ByteSource]) -> None:
        self.sources = list(sources)
        super().__init__(np.array([len(s) for s in self.sources], dtype=np.int64))

    def read_piece(self, index: int, start: int, end: int) -> bytes:
        return self.sources[index].read(start, end)


class RecordFile:
    """The records of a ``.jsonl`` (one JSON object per line; blank lines allowed) or ``.csv`` (a header line
    naming the columns, then one row per record) file, indexed in one pass and read one at a time.

    The pass checks every record: each holds ``text_field`` as a string and, when given, ``label_field`` (a
    string or an integer, one kind per file; CSV cells are strings). Errors name the file and line. It keeps the
    byte span of each record and, when asked, the UTF-8 length of each text (``measure``, for corpora) and a
    code for each label (:attr:`label_values` in first-seen order, :attr:`label_codes` per record).
    """

    def __init__(self, path: PathLike, text_field: str = "text", label_field: str | None = None,
                 measure: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"text file not found: {self.path}")
        suffix = self.path.suffix.lower()
        if suffix not in RECORD_SUFFIXES:
            raise ValueError(f"{self.path}: unsupported file type {suffix or '(none)'!r}; expected one of "
                             f"{', '.join(RECORD_SUFFIXES)}")
        self.kind = suffix[1:]
        self.text_field, self.label_field = text_field, label_field
        self.fields = [text_field] if label_field is None else [text_field, label_field]
        self.columns: list[str] = []  # a CSV file's header
        starts: list[int] = []
        ends: list[int] = []
        lengths: list[int] = []
        codes: list[int] = []
        self.label_values: list[str | int] = []
        code_of: dict[str | int, int] = {}
        records = self._scan_jsonl() if self.kind == "jsonl" else self._scan_csv()
        for start, end, line, record in records:
            text = record[text_field]
            if not isinstance(text, str):
                raise ValueError(f"{self.path}:{line}: {text_field!r} holds a {type(text).__name__}, expected a "
                                 "string")
            starts.append(start)
            ends.append(end)
            if measure:
                lengths.append(len(text.encode("utf-8")))
            if label_field is not None:
                label = record[label_field]
                # bool is an int subclass, but true/false labels are almost certainly a mistake in the data.
                if isinstance(label, bool) or not isinstance(label, (str, int)):
                    raise ValueError(f"{self.path}:{line}: {label_field!r} holds a {type(label).__name__}, "
                                     "expected a string or an integer")
                if label not in code_of:
                    if self.label_values and type(label) is not type(self.label_values[0]):
                        raise ValueError(f"{self.path}:{line}: labels in {label_field!r} mix strings and "
                                         "integers; use one kind")
                    code_of[label] = len(self.label_values)
                    self.label_values.append(label)
                codes.append(code_of[label])
        if not starts:
            raise ValueError(f"{self.path}: no records (expected "
                             + ("one JSON object per line" if self.kind == "jsonl" else "rows under the header line")
                             + f" with {' and '.join(repr(f) for f in self.fields)})")
        # numpy arrays: 8 bytes a record instead of a Python int object's 28 and a list slot's 8.
        self.starts, self.ends = np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)
        self.text_lengths = np.array(lengths, dtype=np.int64) if measure else None
        self.label_codes = np.array(codes, dtype=np.int32) if label_field is not None else None
        self._file: IO[bytes] | None = None

    def __len__(self) -> int:
        return len(self.starts)

    def _missing(self, line: int, record: dict[str, Any]) -> None:
        for field in self.fields:
            if field not in record:
                raise ValueError(f"{self.path}:{line}: no {field!r} field (fields present: {sorted(record)}); "
                                 "name the field to read with the data source's text_field/label_field option")

    def _scan_jsonl(self) -> Iterator[tuple[int, int, int, dict[str, Any]]]:
        with open(self.path, "rb") as f:
            offset = 0
            for number, raw in enumerate(f, start=1):
                start, offset = offset, offset + len(raw)
                line = raw[len(_BOM):] if number == 1 and raw.startswith(_BOM) else raw
                if not line.strip():
                    continue
                record = self._parse_json(line, number)
                self._missing(number, record)
                yield start + len(raw) - len(line), offset, number, record

    def _parse_json(self, line: bytes, number: int | str) -> dict[str, Any]:
        try:
            record = json.loads(line)
        except UnicodeDecodeError as error:
            raise ValueError(f"{self.path}:{number}: not UTF-8 text ({error.reason})") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"{self.path}:{number}: invalid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{self.path}:{number}: expected a JSON object, got {type(record).__name__}")
        return record

    def _scan_csv(self) -> Iterator[tuple[int, int, int, dict[str, Any]]]:
        with open(self.path, "rb") as f:
            line_starts: list[int] = []  # byte offsets of the physical lines the reader has not finished yet
            first = 1  # the number of line_starts[0]
            offset = 0

            def lines() -> Iterator[str]:
                nonlocal offset
                for number, raw in enumerate(f, start=1):
                    line_starts.append(offset)
                    offset += len(raw)
                    try:
                        yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
                    except UnicodeDecodeError as error:
                        raise ValueError(f"{self.path}:{number}: not UTF-8 text ({error.reason})") from None

            reader = csv.reader(lines())
            try:
                header = next(reader, None)
                while header is not None and not header:  # blank lines before the header
                    header = next(reader, None)
                if header is None:
                    raise ValueError(f"{self.path}: empty CSV file (expected a header line naming the columns "
                                     f"{', '.join(self.fields)}, then one row per record)")
                missing = [field for field in self.fields if field not in header]
                if missing:
                    raise ValueError(f"{self.path}: the header line {header} names no {missing[0]!r} column; start "
                                     f"the file with a header line naming its columns (e.g. {','.join(self.fields)})"
                                     " or name the column to read with the text_field/label_field option")
                self.columns = header
                index = {name: header.index(name) for name in self.fields}
                del line_starts[:reader.line_num - first + 1]
                first = reader.line_num + 1
                for row in reader:
                    start_line = first
                    start = line_starts[0]
                    del line_starts[:reader.line_num - first + 1]
                    first = reader.line_num + 1
                    if not row:  # a blank line
                        continue
                    if len(row) != len(header):
                        raise ValueError(f"{self.path}:{start_line}: the row has {len(row)} cells but the header "
                                         f"has {len(header)} ({header})")
                    yield start, offset if not line_starts else line_starts[0], start_line, \
                        {name: row[i] for name, i in index.items()}
            except csv.Error as error:
                raise ValueError(f"{self.path}:{reader.line_num}: malformed CSV ({error})") from None

    def record(self, index: int) -> dict[str, Any]:
        """The fields of record ``index`` (only the text and label fields for CSV)."""
        if self._file is None:
            self._file = open(self.path, "rb")  # kept open for the next read; dropped on pickling
        start, end = int(self.starts[index]), int(self.ends[index])
        self._file.seek(start)
        raw = self._file.read(end - start)
        if self.kind == "jsonl":
            return self._parse_json(raw, f"record {index + 1}")
        row = next(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
        return {name: row[self.columns.index(name)] for name in self.fields}

    def text(self, index: int) -> str:
        return str(self.record(index)[self.text_field])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None}  # each process opens the file itself

    def __del__(self) -> None:
        if getattr(self, "_file", None) is not None:
            self._file.close()  # type: ignore[union-attr]


class RecordDocuments(JoinedBytes):
    """The text field of every record of a :class:`RecordFile` (built with ``measure=True``) as one UTF-8 stream,
    documents separated by :data:`SEPARATOR`."""

    def __init__(self, records: RecordFile) -> None:
        if records.text_lengths is None:
            raise ValueError("RecordDocuments needs a RecordFile built with measure=True")
        self.records = records
        super().__init__(records.text_lengths)

    def read_piece(self, index: int, start: int, end: int) -> bytes:
        return self.records.text(index).encode("utf-8")[start:end]
