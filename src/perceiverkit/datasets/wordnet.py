"""WordNet 3.0 glosses and a text-classification task: predict a synset's lexicographer file from its gloss.

The parser reads the database files ``data.{noun,verb,adj,adv}`` (format described in WordNet's wndb(5WN));
the default location is the one filled by Debian's ``wordnet-base`` package.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, SupportsIndex

from torch.utils.data import Dataset

from ._common import DataMissingError, PathLike, require_dir

__all__ = [
    "DEFAULT_ROOT",
    "LEXNAMES",
    "WORDNET_PARTS",
    "GlossEntry",
    "WordNetLexnames",
    "read_wordnet_glosses",
    "split_gloss",
]

DEFAULT_ROOT = Path("/usr/share/wordnet")
APT_PACKAGE = "wordnet-base"

# The 45 lexicographer files in file-number order, as listed in WordNet's lexnames(5WN).
LEXNAMES: tuple[str, ...] = (
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
)

WORDNET_PARTS: tuple[str, ...] = ("noun", "verb", "adj", "adv")

# Synset types allowed in each data file ('s' is an adjective satellite, stored with the adjectives).
_SS_TYPES: dict[str, frozenset[str]] = {
    "noun": frozenset("n"),
    "verb": frozenset("v"),
    "adj": frozenset("as"),
    "adv": frozenset("r"),
}

# Adjectives may carry a syntactic marker glued to the word: (a) prenominal, (p) predicate,
# (ip) immediately postnominal. It is not part of the word, so it is dropped.
_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")

# Examples are separated by ';'. Some glosses have an unbalanced quote (e.g. `"drop a hint"; drop names"`),
# so a separator is any ';' touching a quote on either side rather than a strict quoted-string grammar.
_EXAMPLE_SEPARATOR = re.compile(r'(?<=")\s*;\s*|;\s*(?=")')

TextField = Literal["definition", "gloss"]
Split = Literal["train", "val", "test"]


@dataclass(frozen=True, slots=True)
class GlossEntry:
    """One synset's gloss.

    ``offset`` is the synset's byte offset in its data file and, with ``pos`` (n, v, a, s or r), its
    identity. ``words`` are the synset's lemmas with underscores turned into spaces and adjective markers
    removed. ``gloss`` is the full text; ``definition`` is the part before the first quoted example
    (see :func:`split_gloss`) and ``examples`` are the usage examples without their quotes.
    """

    offset: int
    pos: str
    lexname: str
    words: tuple[str, ...]
    gloss: str
    definition: str
    examples: tuple[str, ...]

    @property
    def synset_id(self) -> str:
        """WordNet's usual synset key, e.g. ``02084071-n``."""
        return f"{self.offset:08d}-{self.pos}"

    @property
    def label(self) -> int:
        """Index of ``lexname`` in :data:`LEXNAMES`."""
        return LEXNAMES.index(self.lexname)


def split_gloss(gloss: str) -> tuple[str, tuple[str, ...]]:
    """Split a gloss into its definition and its quoted examples.

    The examples start at the first ``; "``, or at ``: "`` (17 WordNet 3.0 glosses introduce their examples
    with a colon). Parenthesised usage notes after the examples (e.g. ``(`alright' is nonstandard)``) are not
    examples and are left out of both parts; they remain in the full gloss.
    """
    found = [i for i in (gloss.find('; "'), gloss.find(': "')) if i >= 0]
    if not found:
        return gloss.strip(), ()
    cut = min(found)
    definition = gloss[:cut].strip()
    examples: list[str] = []
    for piece in _EXAMPLE_SEPARATOR.split(gloss[cut + 1 :]):
        piece = piece.strip().rstrip(";").strip()
        if not piece or (piece.startswith("(") and piece.endswith(")")):
            continue
        piece = piece.removeprefix('"').removesuffix('"').strip()
        if piece:
            examples.append(piece)
    return definition, tuple(examples)


def _parse_line(line: str, part: str, where: str) -> GlossEntry:
    head, bar, gloss = line.partition(" | ")
    if not bar:
        raise ValueError(f"{where}: synset line has no ' | ' before its gloss")
    try:
        offset_s, lex_s, ss_type, w_cnt_s, rest = head.split(" ", 4)
        offset = int(offset_s)
        lex_filenum = int(lex_s)
        w_cnt = int(w_cnt_s, 16)  # the word count is two hex digits
        # Split only the words and the pointer count; the pointers themselves are not needed.
        tokens = rest.split(" ", 2 * w_cnt + 1)
        if w_cnt == 0 or len(tokens) < 2 * w_cnt + 1:
            raise IndexError
        raw_words = tokens[0 : 2 * w_cnt : 2]
        int(tokens[2 * w_cnt])  # the pointer count must follow the words
    except (IndexError, ValueError):
        raise ValueError(
            f"{where}: malformed synset line (expected 'offset lex_filenum ss_type w_cnt word lex_id ... p_cnt'): "
            f"{head[:80]!r}"
        ) from None
    if not 0 <= lex_filenum < len(LEXNAMES):
        raise ValueError(f"{where}: lexicographer file number {lex_filenum} outside 0-{len(LEXNAMES) - 1}")
    if ss_type not in _SS_TYPES[part]:
        raise ValueError(f"{where}: synset type {ss_type!r} in data.{part} (expected one of {sorted(_SS_TYPES[part])})")
    if part == "adj":
        raw_words = [_ADJ_MARKER.sub("", w) for w in raw_words]
    words = tuple(w.replace("_", " ") for w in raw_words)
    gloss = gloss.strip()
    definition, examples = split_gloss(gloss)
    return GlossEntry(offset, ss_type, LEXNAMES[lex_filenum], words, gloss, definition, examples)


@functools.lru_cache(maxsize=8)
def _parse_data_file(path: str, part: str, mtime_ns: int, size: int) -> tuple[GlossEntry, ...]:
    # mtime and size are part of the cache key so an edited file is read again.
    del mtime_ns, size
    entries: list[GlossEntry] = []
    # ~100k small objects in a row trigger repeated full garbage collections that make up a large part
    # of the parse time; nothing here creates reference cycles, so collection is paused meanwhile.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if raw.startswith(b"  "):  # licence header lines
                    continue
                # WordNet 3.0 is ASCII; latin-1 decodes any byte, so a stray one cannot abort the parse.
                line = raw.decode("latin-1").rstrip("\r\n")
                if not line.strip():
                    continue
                entries.append(_parse_line(line, part, f"{path}:{number}"))
    finally:
        if gc_was_enabled:
            gc.enable()
    if not entries:
        raise ValueError(f"{path}: no synset lines found (is this a WordNet data.{part} file?)")
    return tuple(entries)


def read_wordnet_glosses(root: PathLike | None = None, parts: Sequence[str] = WORDNET_PARTS) -> list[GlossEntry]:
    """Parse every synset of the WordNet database files ``data.<part>`` under ``root``.

    ``root`` defaults to :data:`DEFAULT_ROOT`; ``parts`` picks among noun, verb, adj and adv. Entries come in
    file order, parts in the order given. Raises :class:`DataMissingError` if the files are absent.
    """
    base = require_dir(DEFAULT_ROOT if root is None else root, "WordNet database folder", APT_PACKAGE, "root")
    entries: list[GlossEntry] = []
    for part in parts:
        if part not in _SS_TYPES:
            raise ValueError(f"unknown WordNet part {part!r}; expected some of {WORDNET_PARTS}")
        path = base / f"data.{part}"
        if not path.is_file():
            raise DataMissingError(f"WordNet data file data.{part}", path, APT_PACKAGE, "root")
        stat = path.stat()
        entries.extend(_parse_data_file(str(path.resolve()), part, stat.st_mtime_ns, stat.st_size))
    return entries


def _split_key(entry: GlossEntry, seed: int) -> bytes:
    # A keyed hash of the synset's identity: the split depends only on (seed, synset), not on the
    # order of the files, library versions or the other synsets present.
    return hashlib.blake2b(f"{seed}:{entry.offset:08d}-{entry.pos}".encode(), digest_size=8).digest()


class WordNetLexnames(Dataset[tuple[str, int]]):
    """Classify a synset's text into one of the 45 WordNet lexicographer files (``noun.animal``, ...).

    Items are ``(text, label)`` with ``label`` an index into :attr:`classes` (= :data:`LEXNAMES`). ``text`` is
    the synset's definition (default) or its full gloss with examples (``text="gloss"``). The headwords are
    deliberately left out, so the task is to read a meaning rather than look up a word (the examples of
    ``text="gloss"`` do often quote the headword).

    The split is by synset and stratified by class: within each lexname, synsets are ordered by a hash of
    ``(seed, synset id)`` and cut by ``fractions`` (train, val, test), so every class with at least one synset
    appears in train, splits are disjoint, and the same seed always gives the same split.
    :attr:`texts` and :attr:`labels` give the split as plain lists for scikit-learn.
    """

    classes: list[str]
    entries: list[GlossEntry]
    texts: list[str]
    labels: list[int]

    def __init__(
        self,
        split: Split = "train",
        root: PathLike | None = None,
        seed: int = 0,
        fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
        text: TextField = "definition",
    ) -> None:
        splits = ("train", "val", "test")
        if split not in splits:
            raise ValueError(f"split must be one of {splits}, got {split!r}")
        if text not in ("definition", "gloss"):
            raise ValueError(f"text must be 'definition' or 'gloss', got {text!r}")
        if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
            raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions!r}")
        self.split = split
        self.text = text
        self.seed = seed
        self.fractions = tuple(fractions)
        self.classes = list(LEXNAMES)

        everything = read_wordnet_glosses(root)
        by_class: dict[str, list[int]] = {}
        for i, entry in enumerate(everything):
            by_class.setdefault(entry.lexname, []).append(i)
        which = splits.index(split)
        keep = [False] * len(everything)
        for members in by_class.values():
            n = len(members)
            n_train = int(n * fractions[0] + 0.5)
            if fractions[0] > 0:
                n_train = max(n_train, 1)  # keep every class in train, even a tiny one
            n_val = min(int(n * fractions[1] + 0.5), n - n_train)
            bounds = (0, n_train, n_train + n_val, n)
            ordered = sorted(members, key=lambda i: _split_key(everything[i], seed))
            for i in ordered[bounds[which] : bounds[which + 1]]:
                keep[i] = True

        # Keep file order within the split so the item order does not depend on the hash order.
        self.entries = [entry for entry, kept in zip(everything, keep, strict=True) if kept]
        self.texts = [e.definition if text == "definition" else e.gloss for e in self.entries]
        self.labels = [LEXNAMES.index(e.lexname) for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: SupportsIndex) -> tuple[str, int]:
        i = operator.index(index)
        return self.texts[i], self.labels[i]

