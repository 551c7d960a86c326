"""``perceiverkit predict``: a trained model's pipeline over files, folders, CSV or JSONL rows, one JSON line per
input, written atomically (nothing half-written is left when an input fails)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._common import add_batch_arguments

HELP = "a trained model's predictions for files, folders, CSV or JSONL rows, as JSON lines"

#: What each supported pipeline reads, by the Hub's task name (the task's pipeline_tag).
INPUT_KINDS = {"image-classification": "image", "text-classification": "text", "fill-mask": "text",
               "text-generation": "text"}
#: The files a text model reads: one input per paragraph (.txt), per record (.jsonl) or per row (.csv).
TEXT_SUFFIXES = (".txt", ".jsonl", ".csv")
#: From this many inputs on, a progress bar shows on stderr.
PROGRESS_FROM = 6


@dataclass(frozen=True)
class Item:
    """One input: its name in the output (a path, or ``path#record``) and what the pipeline reads."""

    name: str
    value: str
    text: bool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files or folders (image models); text, CSV or JSONL files or folders (text "
                             "models); folders are read recursively, in sorted order")
    parser.add_argument("--model", required=True,
                        help="a trained model: a model folder, a training run's output_dir or a .ckpt file")
    parser.add_argument("-o", "--output", default="predictions.jsonl",
                        help="the JSON-lines file to write (default predictions.jsonl)")
    parser.add_argument("--column", default="text", help="the CSV column / JSONL key holding the text (default text)")
    parser.add_argument("--max-new-tokens", type=int, default=64,
                        help="text generation: bytes to generate per prompt (default 64)")
    add_batch_arguments(parser, top_k=5, what="results", per="input")


def _image_items(path: Path) -> Iterator[Item]:
    from PIL import Image

    if path.is_dir():
        known = {suffix for suffix, _ in Image.registered_extensions().items()}
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in known
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
    else:
        files = [path]
    for file in files:
        try:  # read the header now: a bad file is named before the model runs, not halfway through
            with Image.open(file) as image:
                image.verify()
        except Exception as error:  # Pillow raises many types for a file it cannot read
            raise ValueError(f"{file} is not an image Pillow can read ({type(error).__name__}: {error}); "
                             "remove it or pass only image files") from None
        yield Item(str(file), str(file), text=False)


def _text_items(path: Path, column: str) -> Iterator[Item]:
    from ..datasets import read_text_documents

    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
    else:
        files = [path]
    for file in files:
        try:
            documents = read_text_documents(file, field=column, column=column)
        except ValueError as error:
            if file.suffix.lower() not in (".csv", ".jsonl"):
                raise
            raise ValueError(f"{error}; predict reads the text from the --column column or key (default text), "
                             "under a CSV header line") from None
        for number, document in enumerate(documents, start=1):
            yield Item(f"{file}#{number}" if len(documents) > 1 or file.suffix != ".txt" else str(file), document,
                       text=True)


def collect_inputs(inputs: list[str], kind: str, column: str) -> list[Item]:
    """Every input the paths name, in order: folders recursively and sorted, text files split into records."""
    from ..config import ConfigError

    items: list[Item] = []
    for name in inputs:
        path = Path(name)
        if not path.exists():
            raise FileNotFoundError(f"no file or folder at {name}")
        if kind == "image" and path.is_file() and path.suffix.lower() in (".csv", ".jsonl"):
            raise ConfigError(f"{name}: an image model reads image files and folders, not {path.suffix} tables")
        items.extend(_image_items(path) if kind == "image" else _text_items(path, column))
    if not items:
        raise ConfigError(f"no inputs found in {', '.join(inputs)} (image models read image files, text models "
                          f"{', '.join(TEXT_SUFFIXES)} files)")
    return items


def _predict(pipe: Any, tag: str, values: list[str]) -> list[Any]:
    """One JSON-ready result per value: ranked labels, the candidates of each mask, or the generated text."""
    if tag == "text-generation":
        return [results[0] for results in pipe(values)]
    if tag == "fill-mask":
        return [per_mask[0] if len(per_mask) == 1 else per_mask for per_mask in pipe.predict(values)]
    return list(pipe.predict(values))


def run(args: argparse.Namespace) -> None:
    from tqdm.auto import tqdm

    from ..checkpoints import from_pretrained
    from ..checkpoints.files import temporary_names
    from ..config import ConfigError
    from ..pipelines import pipeline
    from ..tasks.registry import get_task

    model = from_pretrained(args.model, device=args.device, dtype=args.dtype)
    tag = get_task(model.task).pipeline_tag
    if tag not in INPUT_KINDS:
        raise ConfigError(f"{args.model} holds a model for task {model.task!r}; predict runs "
                          f"{', '.join(INPUT_KINDS)} models")
    items = collect_inputs(args.inputs, INPUT_KINDS[tag], args.column)
    options: dict[str, Any] = ({"max_new_tokens": args.max_new_tokens} if tag == "text-generation"
                               else {"top_k": args.top_k, "batch_size": args.batch_size})
    pipe = pipeline(model.task, model, **options)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(items), desc="predicting", unit="input", file=sys.stderr,
               disable=len(items) < PROGRESS_FROM)
    with temporary_names(output) as (tmp,), open(tmp, "w", encoding="utf-8") as out, bar:
        for start in range(0, len(items), args.batch_size):
            chunk = items[start:start + args.batch_size]
            for item, result in zip(chunk, _predict(pipe, tag, [item.value for item in chunk]), strict=True):
                line = {"input": item.name, **({"text": item.value} if item.text else {}), "result": result}
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
            bar.update(len(chunk))
    print(f"{len(items)} predictions: {output}", file=sys.stderr)
