from __future__ import annotations

from pathlib import Path

import pytest

from perceiverkit.datasets import (
    LEXNAMES,
    DataMissingError,
    GlossEntry,
    WordNetLexnames,
    read_wordnet_glosses,
    split_gloss,
)
from perceiverkit.datasets import wordnet as wn

# Synsets per data file in WordNet 3.0.
SYNSET_COUNTS = {"noun": 82115, "verb": 13767, "adj": 18156, "adv": 3621}
TOTAL = sum(SYNSET_COUNTS.values())


@pytest.fixture(scope="module")
def glosses(wordnet_root: Path) -> list[GlossEntry]:
    return read_wordnet_glosses()


@pytest.fixture(scope="module")
def splits(wordnet_root: Path) -> dict[str, WordNetLexnames]:
    return {s: WordNetLexnames(s) for s in ("train", "val", "test")}


def test_lexnames_table() -> None:
    assert len(LEXNAMES) == 45 and len(set(LEXNAMES)) == 45
    assert LEXNAMES[:4] == ("adj.all", "adj.pert", "adv.all", "noun.Tops")
    assert LEXNAMES[18] == "noun.person"
    assert LEXNAMES[28:30] == ("noun.time", "verb.body")
    assert LEXNAMES[43:] == ("verb.weather", "adj.ppl")


@pytest.mark.parametrize("part", list(SYNSET_COUNTS))
def test_synset_counts_per_file(wordnet_root: Path, part: str) -> None:
    entries = read_wordnet_glosses(parts=[part])
    assert len(entries) == SYNSET_COUNTS[part]
    # Independently: the file's lines minus its two-space-indented licence header.
    with open(wordnet_root / f"data.{part}", "rb") as f:
        raw = sum(1 for line in f if not line.startswith(b"  "))
    assert len(entries) == raw
    prefix = {"noun": ("noun.",), "verb": ("verb.",), "adj": ("adj.",), "adv": ("adv.",)}[part]
    assert all(e.lexname.startswith(prefix) for e in entries)
    assert {e.pos for e in entries} == {"noun": {"n"}, "verb": {"v"}, "adj": {"a", "s"}, "adv": {"r"}}[part]


def test_all_glosses_parse(glosses: list[GlossEntry]) -> None:
    assert len(glosses) == TOTAL
    assert len({e.synset_id for e in glosses}) == TOTAL
    assert all(e.definition and e.words and e.gloss.startswith(e.definition) for e in glosses)
    assert {e.lexname for e in glosses} == set(LEXNAMES)
    assert sum(len(e.examples) for e in glosses) > 40000
    # Quotes may remain in a definition only where the data has no example separator (about 50 glosses).
    assert sum(e.definition.endswith('"') for e in glosses) < 60


def test_known_synsets(glosses: list[GlossEntry]) -> None:
    by_id = {e.synset_id: e for e in glosses}
    entity = by_id["00001740-n"]
    assert entity.words == ("entity",) and entity.lexname == "noun.Tops" and entity.label == 3
    dog = by_id["02084071-n"]
    assert dog.words == ("dog", "domestic dog", "Canis familiaris") and dog.lexname == "noun.animal"
    assert dog.definition.startswith("a member of the genus Canis")
    assert "the dog barked all night" in dog.examples
    able = by_id["00001740-a"]
    assert able.definition.startswith("(usually followed by `to') having the necessary means")
    assert able.examples[0] == "able to swim"
    # Adjective syntactic markers such as galore(ip) are not part of the word.
    assert by_id["00014358-s"].words == ("abounding", "galore")
    assert not any(w.endswith(("(a)", "(p)", "(ip)")) for e in glosses for w in e.words)


def test_split_gloss() -> None:
    assert split_gloss("a plain definition") == ("a plain definition", ())
    assert split_gloss('def; more def; "ex one"; "ex two"') == ("def; more def", ("ex one", "ex two"))
    assert split_gloss('connect to a vehicle: "hitch the trailer to the car"') == (
        "connect to a vehicle", ("hitch the trailer to the car",)
    )
    # An unbalanced quote in the data still separates the examples.
    assert split_gloss('d; "drop a hint"; drop names"') == ("d", ("drop a hint", "drop names"))
    # Parenthesised usage notes are neither definition nor example.
    note = 'd; "you can find it anywhere"; (`anyplace\' is informal)'
    assert split_gloss(note) == ("d", ("you can find it anywhere",))


def test_splits_are_disjoint_complete_and_stratified(splits: dict[str, WordNetLexnames]) -> None:
    ids = {name: {e.synset_id for e in ds.entries} for name, ds in splits.items()}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
    assert sum(len(s) for s in ids.values()) == TOTAL
    assert len(splits["train"]) / TOTAL == pytest.approx(0.8, abs=0.005)
    assert len(splits["val"]) / TOTAL == pytest.approx(0.1, abs=0.005)
    assert set(splits["train"].labels) == set(range(45))  # every class in train
    assert set(splits["val"].labels) == set(range(45))  # stratified: even the small classes
    for ds in splits.values():
        assert ds.classes == list(LEXNAMES)
        assert len(ds.texts) == len(ds.labels) == len(ds)


def test_items_are_definitions(splits: dict[str, WordNetLexnames]) -> None:
    train = splits["train"]
    text, label = train[0]
    assert isinstance(text, str) and isinstance(label, int)
    entry = train.entries[0]
    assert text == entry.definition and label == LEXNAMES.index(entry.lexname)


def test_split_is_deterministic_and_seeded(wordnet_root: Path, splits: dict[str, WordNetLexnames]) -> None:
    again = WordNetLexnames("val")
    assert again.texts == splits["val"].texts and again.labels == splits["val"].labels
    other = WordNetLexnames("val", seed=1, text="gloss")
    assert {e.synset_id for e in other.entries} != {e.synset_id for e in splits["val"].entries}
    assert all(t == e.gloss for t, e in zip(other.texts, other.entries, strict=True))


def test_argument_validation(wordnet_root: Path) -> None:
    with pytest.raises(ValueError, match="split"):
        WordNetLexnames("dev")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fractions"):
        WordNetLexnames(fractions=(0.8, 0.1, 0.2))
    with pytest.raises(ValueError, match="text"):
        WordNetLexnames(text="words")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="part"):
        read_wordnet_glosses(parts=["pronoun"])


def _write_data(root: Path, part: str, lines: list[str]) -> None:
    header = ["  1 This is a licence header line  ", "  2 another  "]
    (root / f"data.{part}").write_text("\n".join(header + lines) + "\n", encoding="ascii")


def test_custom_root_and_malformed_lines(tmp_path: Path) -> None:
    _write_data(tmp_path, "noun", ["00000100 05 n 02 cat 0 true_cat 0 000 | feline mammal; \"the cat purred\"  "])
    _write_data(tmp_path, "verb", ["00000200 43 v 01 rain 0 000 | precipitate as rain  "])
    (entry,) = read_wordnet_glosses(tmp_path, parts=["noun"])
    assert entry == GlossEntry(100, "n", "noun.animal", ("cat", "true cat"), 'feline mammal; "the cat purred"',
                               "feline mammal", ("the cat purred",))
    both = read_wordnet_glosses(tmp_path, parts=["noun", "verb"])
    assert [e.lexname for e in both] == ["noun.animal", "verb.weather"]

    bad_lines = {
        "no ' | '": "00000100 05 n 01 cat 0 000 feline",
        "malformed": "00000100 05 n 03 cat 0 000 | feline",
        "outside 0-44": "00000100 45 n 01 cat 0 000 | feline",
        "synset type 'v'": "00000100 05 v 01 cat 0 000 | feline",
    }
    for needle, line in bad_lines.items():
        _write_data(tmp_path, "noun", [line])
        with pytest.raises(ValueError, match=needle) as info:
            read_wordnet_glosses(tmp_path, parts=["noun"])
        assert f"{tmp_path / 'data.noun'}:3" in str(info.value)  # file and line number


def test_missing_data_names_package_and_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absent = tmp_path / "wordnet"
    monkeypatch.setattr(wn, "DEFAULT_ROOT", absent)
    with pytest.raises(DataMissingError) as info:
        WordNetLexnames()
    assert "apt-get install wordnet-base" in str(info.value) and str(absent) in str(info.value)
    absent.mkdir()
    _write_data(absent, "noun", ["00000100 05 n 01 cat 0 000 | feline  "])
    with pytest.raises(DataMissingError, match="data.verb") as info:
        read_wordnet_glosses()
    assert str(absent / "data.verb") in str(info.value)
