"""Every Transformers parity test (``test_transformers_*.py``) runs twice: on the fast paths (the default) and on
the reference path (:func:`perceiverkit.accel.reference_path`), with the same assertions and tolerances."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from perceiverkit.accel import reference_path

PATHS = ["fast", "reference"]


@pytest.fixture(autouse=True)
def attention_path(request: pytest.FixtureRequest) -> Iterator[str]:
    path = getattr(request, "param", "fast")
    if path == "reference":
        with reference_path():
            yield path
    else:
        yield path


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if Path(metafunc.definition.fspath).name.startswith("test_transformers_"):
        metafunc.parametrize("attention_path", PATHS, indirect=True)
