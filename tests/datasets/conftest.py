"""Fixtures for the dataset tests: the system data sets' paths, skipping with an install hint when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")
WORDNET_ROOT = Path("/usr/share/wordnet")
JARGON_PATH = Path("/usr/share/doc/jargon-text/jargon.txt.gz")


def _require(paths: list[Path], package: str) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"{missing[0]} missing: `apt-get install {package}` to run this test")


@pytest.fixture(scope="session")
def fashion_root() -> Path:
    names = [f"{s}-{k}-ubyte.gz" for s in ("train", "t10k") for k in ("images-idx3", "labels-idx1")]
    _require([FASHION_ROOT / n for n in names], "dataset-fashion-mnist")
    return FASHION_ROOT


@pytest.fixture(scope="session")
def wordnet_root() -> Path:
    _require([WORDNET_ROOT / f"data.{p}" for p in ("noun", "verb", "adj", "adv")], "wordnet-base")
    return WORDNET_ROOT


@pytest.fixture(scope="session")
def jargon_path() -> Path:
    _require([JARGON_PATH], "jargon-text")
    return JARGON_PATH
