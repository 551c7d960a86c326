from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from perceiverkit.datasets import (
    ByteChunks,
    DataMissingError,
    encode_labels,
    read_jargon_file,
    read_labelled_texts,
    read_text_documents,
    wordnet_gloss_corpus,
)
from perceiverkit.datasets import text_corpus as tc


@pytest.fixture(scope="module")
def jargon(jargon_path: Path) -> str:
    return read_jargon_file()


# --- system corpora ---------------------------------------------------------------------------------------


def test_jargon_file(jargon: str) -> None:
    assert len(jargon) > 1_000_000
    assert "The Jargon File" in jargon[:200]
    assert "hacker" in jargon
    assert "\ufffd" not in jargon  # decoded, not replaced


def test_jargon_override_gzip_and_latin1(tmp_path: Path) -> None:
    packed = tmp_path / "j.txt.gz"
    packed.write_bytes(gzip.compress("hacker — wizard\n".encode()))
    assert read_jargon_file(packed) == "hacker — wizard\n"
    latin = tmp_path / "j.txt"
    latin.write_bytes(b"caf\xe9 hacker\n")  # not valid UTF-8
    assert read_jargon_file(latin) == "café hacker\n"
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"\n")
    with pytest.raises(ValueError, match="empty"):
        read_jargon_file(empty)


def test_missing_jargon_names_package_and_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absent = tmp_path / "jargon.txt.gz"
    monkeypatch.setattr(tc, "DEFAULT_JARGON_PATH", absent)
    with pytest.raises(DataMissingError) as info:
        read_jargon_file()
    assert "apt-get install jargon-text" in str(info.value) and str(absent) in str(info.value)


def test_wordnet_gloss_corpus(wordnet_root: Path) -> None:
    corpus = wordnet_gloss_corpus()
    assert len(corpus) == 117659
    assert corpus[0].startswith("entity: that which is perceived")
    assert any(doc.startswith("dog, domestic dog, Canis familiaris: a member of the genus Canis") for doc in corpus)


# --- user files -------------------------------------------------------------------------------------------


def test_txt_paragraphs(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"first line\nstill first\n\n\n  second  \n \t \nthird\r\n\r\nfourth\n")
    assert read_text_documents(path) == ["first line\nstill first", "second", "third", "fourth"]
    (tmp_path / "blank.txt").write_text("\n\n  \n")
    with pytest.raises(ValueError, match="no documents"):
        read_text_documents(tmp_path / "blank.txt")


def test_jsonl_documents(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    rows = [{"text": "one", "body": "uno"}, {"text": "", "body": "dos"}, {"text": "three\nlines", "body": "tres"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert read_text_documents(path) == ["one", "", "three\nlines"]  # empty documents are kept
    assert read_text_documents(path, field="body") == ["uno", "dos", "tres"]
    with pytest.raises(ValueError, match=r"docs.jsonl:1: no 'content' field"):
        read_text_documents(path, field="content")
    path.write_text('{"text": "ok"}\n{"text": oops}\n')
    with pytest.raises(ValueError, match=r"docs.jsonl:2: invalid JSON"):
        read_text_documents(path)
    path.write_text('{"text": "ok"}\n["text"]\n')
    with pytest.raises(ValueError, match=r":2: expected a JSON object"):
        read_text_documents(path)
    path.write_text('{"text": 3}\n')
    with pytest.raises(ValueError, match="expected a string"):
        read_text_documents(path)


def test_csv_documents(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    path.write_text('id,text,notes\n1,"hello, world",a\n2,"two\nlines",b\n', encoding="utf-8-sig")  # with BOM
    assert read_text_documents(path) == ["hello, world", "two\nlines"]
    assert read_text_documents(path, column="notes") == ["a", "b"]
    with pytest.raises(ValueError, match=r"no 'body' column \(columns: \['id', 'text', 'notes'\]\)"):
        read_text_documents(path, column="body")
    path.write_text("id,text\n1,fine\n2,too,many\n")
    with pytest.raises(ValueError, match="more cells"):
        read_text_documents(path)
    path.write_text("id,text\n1\n")
    with pytest.raises(ValueError, match="no cell for column 'text'"):
        read_text_documents(path)
    path.write_text("")
    with pytest.raises(ValueError, match="empty CSV"):
        read_text_documents(path)


def test_reader_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="absent.txt"):
        read_text_documents(tmp_path / "absent.txt")
    (tmp_path / "data.xml").write_text("<a/>")
    with pytest.raises(ValueError, match=r"unsupported file type '.xml'"):
        read_text_documents(tmp_path / "data.xml")
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(ValueError, match="not valid utf-8-sig"):
        read_text_documents(tmp_path / "bad.txt")
    assert read_text_documents(tmp_path / "bad.txt", encoding="latin-1") == ["café"]


def test_labelled_texts(tmp_path: Path) -> None:
    csv_path = tmp_path / "reviews.csv"
    csv_path.write_text("review,sentiment\ngreat,pos\nawful,neg\nfine,pos\n")
    texts, labels = read_labelled_texts(csv_path, text_field="review", label_field="sentiment")
    assert texts == ["great", "awful", "fine"] and labels == ["pos", "neg", "pos"]
    assert encode_labels(labels) == ([1, 0, 1], ["neg", "pos"])

    jsonl = tmp_path / "reviews.jsonl"
    jsonl.write_text('{"text": "a", "label": 2}\n{"text": "b", "label": 0}\n')
    assert read_labelled_texts(jsonl) == (["a", "b"], [2, 0])
    jsonl.write_text('{"text": "a", "label": 2}\n{"text": "b", "label": "x"}\n')
    with pytest.raises(ValueError, match="mix strings and integers"):
        read_labelled_texts(jsonl)
    jsonl.write_text('{"text": "a", "label": true}\n')
    with pytest.raises(ValueError, match="bool label"):
        read_labelled_texts(jsonl)
    jsonl.write_text('{"text": "a"}\n')
    with pytest.raises(ValueError, match="no 'label' field"):
        read_labelled_texts(jsonl)
    (tmp_path / "plain.txt").write_text("a\n")
    with pytest.raises(ValueError, match="unsupported file type"):
        read_labelled_texts(tmp_path / "plain.txt")


# --- ByteChunks -------------------------------------------------------------------------------------------


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_byte_chunks_on_small_corpus() -> None:
    documents = [f"document {i}: " + "ünïcödé text " * (i + 3) for i in range(40)]
    train = ByteChunks(documents, length=16, val_fraction=0.1)
    val = ByteChunks(documents, length=16, split="val", val_fraction=0.1)
    data = "\n\n".join(documents).encode("utf-8")
    assert train.data == val.data == data
    assert train.val_region == val.val_region
    for ds in (train, val):
        assert len(ds) > 0
        for i in range(len(ds)):
            item = ds[i]
            assert isinstance(item, bytes) and len(item) == 16
            assert item == data[ds.spans[i][0] : ds.spans[i][1]]
    assert not any(_overlaps(t, v) for t in train.spans for v in val.spans)
    assert not any(_overlaps(t, train.val_region) for t in train.spans)
    assert all(train.val_region[0] <= s and e <= train.val_region[1] for s, e in val.spans)
    # Only each region's tail (< one window) goes unused.
    assert (len(train) + len(val)) * 16 > len(data) - 3 * 16


def test_byte_chunks_are_deterministic_and_seeded() -> None:
    documents = ["x" * 5000, "y" * 5000]
    a = ByteChunks(documents, 64, split="val", seed=0)
    b = ByteChunks(documents, 64, split="val", seed=0)
    c = ByteChunks(documents, 64, split="val", seed=1)
    assert a.spans == b.spans and a.val_region != c.val_region
    everything = ByteChunks(documents, 64, val_fraction=0.0)
    assert len(everything) == len(everything.data) // 64


def test_byte_chunks_on_jargon(jargon: str) -> None:
    train = ByteChunks([jargon], 512)
    val = ByteChunks([jargon], 512, split="val")
    assert all(len(train[i]) == 512 for i in range(0, len(train), 97))
    assert len(val) == pytest.approx(0.05 * len(train.data) / 512, abs=1)
    assert not any(_overlaps(t, val.val_region) for t in train.spans)


def test_byte_chunks_validation() -> None:
    with pytest.raises(TypeError, match="not a single string"):
        ByteChunks("some text", 4)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"documents\[1\]"):
        ByteChunks(["ok", b"bytes"], 4)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="positive integer"):
        ByteChunks(["text"], 0)
    with pytest.raises(ValueError, match="val_fraction"):
        ByteChunks(["text"], 2, val_fraction=1.0)
    with pytest.raises(ValueError, match="needs val_fraction > 0"):
        ByteChunks(["text"], 2, split="val", val_fraction=0.0)
    with pytest.raises(ValueError, match="no val window of 8 bytes fits"):
        ByteChunks(["a" * 100], 8, split="val", val_fraction=0.05)
    with pytest.raises(ValueError, match="split"):
        ByteChunks(["text"], 2, split="test")  # type: ignore[arg-type]
