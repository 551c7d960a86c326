"""The README's offline code runs as written: a user copies it into a fresh interpreter."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_block_after(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading):]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"no python block after {heading!r}"
    return match.group(1)


def test_build_a_model_for_a_new_modality_runs_as_written():
    namespace: dict[str, object] = {}
    exec(compile(_python_block_after("### Build a model for a new modality"), "README.md", "exec"), namespace)
    logits = namespace["logits"]
    assert tuple(logits.shape) == (2, 1, 10)  # type: ignore[attr-defined]  # (batch, one query, 10 outputs)


def test_every_model_in_the_table_is_a_top_level_name():
    """The "What is here" table names each task's model class; each one is ``perceiverkit.<name>``."""
    import perceiverkit

    text = README.read_text(encoding="utf-8")
    table = text[text.index("## What is here"):text.index("## Use")]
    models = re.findall(r"^\|[^|]+\| `(\w+)` \|", table, re.M)
    assert len(models) == 7, models
    missing = [name for name in models if name not in perceiverkit.__all__ or not hasattr(perceiverkit, name)]
    assert not missing, missing


def test_every_source_and_test_path_the_docs_name_exists():
    """README and docs/*.md point readers at files (``src/perceiverkit/...``, ``tests/....py``); each one exists."""
    root = README.parent
    missing = []
    for doc in [README, *sorted((root / "docs").glob("*.md"))]:
        for path in re.findall(r"(?:src/perceiverkit/[\w/.-]*\w|tests/[\w/.-]+\.py)", doc.read_text(encoding="utf-8")):
            if not (root / path).exists():
                missing.append(f"{doc.name}: {path}")
    assert not missing, missing
