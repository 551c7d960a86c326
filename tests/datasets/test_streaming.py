"""Streaming readers: every byte and record they return is checked against the file read whole (Python's own
csv/json modules and plain slicing are the oracle)."""

from __future__ import annotations

import csv
import io
import json
import pickle
import random

import pytest

from perceiverkit.datasets import ByteChunks
from perceiverkit.datasets.streaming import ConcatBytes, MemoryBytes, RecordDocuments, RecordFile, TextFileBytes

TEXTS = ["plain", "comma, inside", 'a "quoted" word', "two\nlines", "ünïcödé ✓", "", "last one"]


def _write_csv(path, rows, header=("text", "label")):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def test_csv_records_match_the_csv_module(tmp_path):
    rows = [(text, f"c{i % 3}") for i, text in enumerate(TEXTS * 5)]
    path = tmp_path / "data.csv"
    _write_csv(path, rows)
    records = RecordFile(path, "text", "label", measure=True)
    assert len(records) == len(rows)
    assert [records.text(i) for i in range(len(rows))] == [text for text, _ in rows]
    assert [records.label_values[c] for c in records.label_codes] == [label for _, label in rows]
    assert list(records.text_lengths) == [len(text.encode()) for text, _ in rows]
    # Read out of order, through a pickled copy (what a data-loader worker holds).
    copy = pickle.loads(pickle.dumps(records))
    for i in random.Random(0).sample(range(len(rows)), 10):
        assert copy.record(i) == {"text": rows[i][0], "label": rows[i][1]}


def test_jsonl_records_with_integer_labels_blank_lines_and_a_bom(tmp_path):
    items = [{"body": text, "y": i % 4, "extra": [1, 2]} for i, text in enumerate(TEXTS)]
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\n\n".join(json.dumps(item) for item in items).encode() + b"\n\n")
    records = RecordFile(path, "body", "y")
    assert [records.text(i) for i in range(len(items))] == TEXTS
    assert [records.label_values[c] for c in records.label_codes] == [item["y"] for item in items]


@pytest.mark.parametrize(("content", "message"), [
    ("", r"empty CSV file \(expected a header line naming the columns text, label"),
    ("I loved it,pos\nawful,neg\n", r"the header line \['I loved it', 'pos'\] names no 'text' column; start the file "
                                    "with a header line"),
    ("text,stars\nok,5\n", "names no 'label' column"),
    ("text,label\n", "no records"),
    ("text,label\nfine,a\ntoo,many,cells\n", r"data.csv:3: the row has 3 cells but the header has 2"),
])
def test_bad_csv_files_are_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "data.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as error:
        RecordFile(path, "text", "label")
    assert str(path) in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(("lines", "message"), [
    (['{"text": "a", "label": 1}', "{oops"], r"data.jsonl:2: invalid JSON"),
    (['{"text": "a", "label": 1}', "[1, 2]"], r"data.jsonl:2: expected a JSON object, got list"),
    (['{"text": "a"}'], r"data.jsonl:1: no 'label' field \(fields present: \['text'\]\)"),
    (['{"text": 3, "label": 1}'], r"data.jsonl:1: 'text' holds a int"),
    (['{"text": "a", "label": 1}', '{"text": "b", "label": "x"}'], r"data.jsonl:2: labels in 'label' mix"),
    (['{"text": "a", "label": true}'], r"'label' holds a bool"),
])
def test_bad_jsonl_files_name_the_line(tmp_path, lines, message):
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=message):
        RecordFile(path, "text", "label")


def test_joined_sources_read_like_the_joined_bytes(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbf" + "first file\n\nparagraph ✓\n".encode())
    _write_csv(tmp_path / "b.csv", [(text, "x") for text in TEXTS])
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in reversed(TEXTS)))
    memory = MemoryBytes(b"in memory")
    stream = ConcatBytes([memory, TextFileBytes(tmp_path / "a.txt"),
                          RecordDocuments(RecordFile(tmp_path / "b.csv", measure=True)),
                          RecordDocuments(RecordFile(tmp_path / "c.jsonl", measure=True))])
    oracle = b"\n\n".join([b"in memory", "first file\n\nparagraph ✓\n".encode(), "\n\n".join(TEXTS).encode(),
                           "\n\n".join(reversed(TEXTS)).encode()])
    assert len(stream) == len(oracle)
    rng = random.Random(0)
    for _ in range(300):
        start = rng.randrange(len(oracle))
        end = start + rng.randrange(1, 40)
        assert stream.read(start, end) == oracle[start:end], (start, end)
    assert stream.read(0, len(oracle)) == oracle


def test_byte_chunks_over_a_file_equal_byte_chunks_over_its_text(tmp_path):
    documents = [f"document {i}: " + "ünïcödé text " * (i % 7 + 1) for i in range(300)]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in documents), encoding="utf-8")
    streamed = ByteChunks(RecordDocuments(RecordFile(path, measure=True)), 32, "val", val_fraction=0.1, seed=3)
    in_memory = ByteChunks(documents, 32, "val", val_fraction=0.1, seed=3)
    assert len(streamed) == len(in_memory) > 0 and streamed.spans == in_memory.spans
    assert [streamed[i] for i in range(len(streamed))] == [in_memory[i] for i in range(len(in_memory))]
    train = ByteChunks(RecordDocuments(RecordFile(path, measure=True)), 32, "train", val_fraction=0.1, seed=3)
    assert train[len(train) - 1] == ByteChunks(documents, 32, "train", val_fraction=0.1, seed=3)[-1]


def test_text_file_bytes_are_the_file_and_pickle_without_a_handle(tmp_path):
    path = tmp_path / "big.txt"
    data = "".join(f"line {i} ✓\n" for i in range(5000)).encode()
    path.write_bytes(data)
    text = TextFileBytes(path)
    assert text.read(100, 200) == data[100:200] and len(text) == len(data)
    clone = pickle.loads(pickle.dumps(text))
    assert clone._file is None and clone.read(len(data) - 5, len(data) + 5) == data[-5:]
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.txt: file is empty"):
        TextFileBytes(tmp_path / "empty.txt")


def test_csv_reader_agrees_on_quoted_newlines(tmp_path):
    # A cell holding a CRLF and quotes, written by the csv module itself.
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows([("text", "label"), ('say "hi"\r\nthen go', "a"), ("x", "b")])
    path = tmp_path / "crlf.csv"
    path.write_text(buffer.getvalue(), newline="")
    records = RecordFile(path, "text", "label")
    assert [records.text(0), records.text(1)] == ['say "hi"\r\nthen go', "x"]
