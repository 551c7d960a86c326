"""Plain-text corpora for byte-level language models: system texts, user files, and fixed-length byte windows.

System sources: the Jargon File (Debian's ``jargon-text``) and WordNet's glosses (``wordnet-base``). User
sources: ``.txt``, ``.jsonl`` and ``.csv`` files, for unlabelled documents or labelled classification data.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import operator
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, SupportsIndex, TypeVar

from torch.utils.data import Dataset

from ._common import PathLike, read_maybe_gzip, require_file
from .streaming import ByteSource, MemoryBytes
from .wordnet import read_wordnet_glosses

__all__ = [
    "DEFAULT_JARGON_PATH",
    "ByteChunks",
    "encode_labels",
    "read_jargon_file",
    "read_labelled_texts",
    "read_text_documents",
    "wordnet_gloss_corpus",
]

DEFAULT_JARGON_PATH = Path("/usr/share/doc/jargon-text/jargon.txt.gz")
JARGON_PACKAGE = "jargon-text"

Label = str | int
L = TypeVar("L", str, int)  # one kind of label per data set, so that they sort

_SUFFIXES = (".txt", ".jsonl", ".csv")
# A blank line: a newline, optional horizontal whitespace, another newline.
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\f\v]*\n")


def _decode(data: bytes) -> str:
    """UTF-8 (a leading byte-order mark dropped), else latin-1, which maps every byte and so cannot fail."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_jargon_file(path: PathLike | None = None) -> str:
    """Return the Jargon File as one string (gzip or plain; UTF-8, falling back to latin-1).

    ``path`` defaults to :data:`DEFAULT_JARGON_PATH`. The title and table of contents are kept: they are
    ordinary text for language modelling.
    """
    p = require_file(DEFAULT_JARGON_PATH if path is None else path, "The Jargon File", JARGON_PACKAGE, "path")
    text = _decode(read_maybe_gzip(p))
    if not text.strip():
        raise ValueError(f"{p}: file is empty (expected the Jargon File's text)")
    return text


def wordnet_gloss_corpus(root: PathLike | None = None) -> list[str]:
    """One document per WordNet synset: ``"word, synonym: gloss with examples"``.

    The headwords are included because, unlike in the classification task, here they are useful text.
    """
    return [f"{', '.join(entry.words)}: {entry.gloss}" for entry in read_wordnet_glosses(root)]


def _read_text(path: Path, encoding: str) -> str:
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not valid {encoding} text ({exc}); pass encoding= to read it") from exc


def _check_suffix(path: Path, allowed: Sequence[str]) -> str:
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise ValueError(f"{path}: unsupported file type {suffix or '(none)'!r}; expected one of {', '.join(allowed)}")
    return suffix


def _jsonl_records(path: Path, text: str, fields: Sequence[str]) -> list[dict[str, object]]:
    """Objects of a JSON-lines file, each checked to hold ``fields``; blank lines are allowed."""
    records: list[dict[str, object]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: invalid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        for field in fields:
            if field not in record:
                raise ValueError(f"{path}:{number}: no {field!r} field (fields present: {sorted(record)})")
        records.append(record)
    return records


def _csv_records(path: Path, text: str, fields: Sequence[str]) -> list[dict[str, object]]:
    """Rows of a CSV file with a header line, each checked to hold ``fields`` and no extra cells."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None:
        raise ValueError(f"{path}: empty CSV file (expected a header line naming {', '.join(fields)})")
    for field in fields:
        if field not in reader.fieldnames:
            raise ValueError(f"{path}: no {field!r} column (columns: {reader.fieldnames})")
    records: list[dict[str, object]] = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if None in row:  # DictReader files surplus cells under the key None
            raise ValueError(f"{where}: row has more cells than the header's {len(reader.fieldnames)}")
        for field in fields:
            if row[field] is None:
                raise ValueError(f"{where}: row has no cell for column {field!r}")
        records.append(dict(row))
    return records


def _string_value(record: dict[str, object], field: str, path: Path, index: int) -> str:
    value = record[field]
    if not isinstance(value, str):
        raise ValueError(f"{path}: record {index + 1} has a {type(value).__name__} in {field!r} (expected a string)")
    return value


def read_text_documents(
    path: PathLike, *, field: str = "text", column: str = "text", encoding: str = "utf-8-sig"
) -> list[str]:
    """Read documents from a user file.

    - ``.txt``: one document per paragraph (blank-line separated), each stripped of surrounding whitespace.
    - ``.jsonl``: one JSON object per line; the document is its ``field`` (a string).
    - ``.csv``: a header line, then one document per row from ``column``.

    Empty ``.jsonl``/``.csv`` values are kept as empty documents rather than dropped. Raises
    ``FileNotFoundError`` for a missing file and ``ValueError`` for malformed content or no documents.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"text file not found: {p}")
    suffix = _check_suffix(p, _SUFFIXES)
    text = _read_text(p, encoding)
    if suffix == ".txt":
        documents = [d.strip() for d in _PARAGRAPH_BREAK.split(text.replace("\r\n", "\n"))]
        documents = [d for d in documents if d]
    elif suffix == ".jsonl":
        records = _jsonl_records(p, text, [field])
        documents = [_string_value(r, field, p, i) for i, r in enumerate(records)]
    else:
        records = _csv_records(p, text, [column])
        documents = [_string_value(r, column, p, i) for i, r in enumerate(records)]
    if not documents:
        raise ValueError(f"{p}: no documents found")
    return documents


def read_labelled_texts(
    path: PathLike, text_field: str = "text", label_field: str = "label", *, encoding: str = "utf-8-sig"
) -> tuple[list[str], list[Label]]:
    """Read ``(texts, labels)`` for classification from a ``.csv`` (columns) or ``.jsonl`` (fields) file.

    CSV labels are strings; JSONL labels may be strings or integers but must all be of one kind. Use
    :func:`encode_labels` to turn them into class indices.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"labelled text file not found: {p}")
    suffix = _check_suffix(p, (".jsonl", ".csv"))
    text = _read_text(p, encoding)
    fields = [text_field, label_field]
    records = _jsonl_records(p, text, fields) if suffix == ".jsonl" else _csv_records(p, text, fields)
    if not records:
        raise ValueError(f"{p}: no records found")
    texts = [_string_value(r, text_field, p, i) for i, r in enumerate(records)]
    labels: list[Label] = []
    for i, record in enumerate(records):
        label = record[label_field]
        # bool is an int subclass, but true/false labels are almost certainly a mistake in the data.
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            raise ValueError(
                f"{p}: record {i + 1} has a {type(label).__name__} label in {label_field!r} "
                "(expected a string or integer)"
            )
        labels.append(label)
    if len({type(label) for label in labels}) > 1:
        raise ValueError(f"{p}: labels in {label_field!r} mix strings and integers; use one kind")
    return texts, labels


def encode_labels(labels: Sequence[L]) -> tuple[list[int], list[L]]:
    """Map labels to indices: ``(ids, classes)`` with ``classes`` sorted and ``classes[ids[i]] == labels[i]``."""
    classes = sorted(set(labels))
    index = {label: i for i, label in enumerate(classes)}
    return [index[label] for label in labels], classes


ByteSplit = Literal["train", "val"]


class ByteChunks(Dataset[bytes]):
    """Fixed-length UTF-8 byte windows over a corpus, for masked language modelling.

    The corpus is ``documents`` joined with ``"\\n\\n"`` and encoded as UTF-8, or a
    :class:`~perceiverkit.datasets.streaming.ByteSource` read on demand (files far larger than memory). A contiguous
    region of ``val_fraction`` of the bytes, placed at a position chosen by ``seed``, is the validation region;
    the bytes before and after it are training data. Each region is cut into consecutive, non-overlapping
    windows of exactly ``length`` bytes; no window crosses into the other split. A region's last
    ``< length`` bytes do not fill a window and are not used. Windows are byte-aligned, so one may start or
    end inside a multi-byte character, as byte-level models expect.

    Windows are computed, not listed, so a corpus of billions of bytes costs no memory here; :attr:`spans`
    lists each item's ``(start, end)`` byte offsets into :attr:`data` (for small corpora and tests).
    """

    def __init__(
        self,
        documents: Sequence[str] | ByteSource,
        length: int,
        split: ByteSplit = "train",
        val_fraction: float = 0.05,
        seed: int = 0,
    ) -> None:
        if isinstance(documents, str):
            raise TypeError("documents must be a sequence of strings, not a single string; wrap it in a list")
        if not hasattr(documents, "read"):
            for i, document in enumerate(documents):
                if not isinstance(document, str):
                    raise TypeError(f"documents[{i}] is a {type(document).__name__}, expected str")
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"length must be a positive integer, got {length!r}")
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
        if split == "val" and val_fraction == 0.0:
            raise ValueError("split='val' needs val_fraction > 0")

        self.split = split
        self.length = length
        self.source: ByteSource = (documents if hasattr(documents, "read")
                                   else MemoryBytes("\n\n".join(documents).encode("utf-8")))
        total = len(self.source)
        val_size = int(total * val_fraction + 0.5)
        # A hash of the seed (not Python's `random`) fixes the position for every Python/NumPy version.
        digest = hashlib.blake2b(f"ByteChunks:{seed}".encode(), digest_size=8).digest()
        val_start = int.from_bytes(digest, "big") % (total - val_size + 1)
        self.val_region = (val_start, val_start + val_size)
        # Without a held-out region the training bytes are one region: cutting them at val_start anyway would
        # drop a partial window there and shift every window after it off the stream's own multiples of length.
        regions = ([self.val_region] if split == "val" else [(0, total)] if val_size == 0
                   else [(0, val_start), (val_start + val_size, total)])
        # (first byte, number of windows) of each region, and the index of each region's first window.
        self.regions = [(begin, max(0, (end - begin) // length)) for begin, end in regions]
        self.firsts = [0, self.regions[0][1]]
        self.size = sum(count for _, count in self.regions)
        if not self.size:
            sizes = " and ".join(str(end - start) for start, end in regions)
            raise ValueError(
                f"no {split} window of {length} bytes fits: the corpus has {total} bytes and the {split} "
                f"region(s) {sizes}; use a shorter length, more text or a different val_fraction"
            )

    @property
    def data(self) -> bytes:
        """The whole corpus (read in full: for small corpora and tests)."""
        return self.source.read(0, len(self.source))

    @property
    def spans(self) -> list[tuple[int, int]]:
        """Every item's ``(start, end)`` byte offsets, in item order (listed in full: for small corpora)."""
        return [self.span(i) for i in range(self.size)]

    def span(self, index: int) -> tuple[int, int]:
        region = 1 if len(self.regions) > 1 and index >= self.firsts[1] else 0
        begin = self.regions[region][0] + (index - self.firsts[region]) * self.length
        return begin, begin + self.length

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: SupportsIndex) -> bytes:
        i = operator.index(index)
        if not -self.size <= i < self.size:
            raise IndexError(f"window {i} of {self.size}")
        start, end = self.span(i % self.size)
        return self.source.read(start, end)
