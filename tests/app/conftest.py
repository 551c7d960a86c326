"""The playground's tests need the `app` extra and selenium (both in the `test` extra): like the rest of the
suite, a missing one stops the run with the install hint rather than skipping silently. A missing *browser* is
different: it comes from the system's packages, and the browser tests skip naming it."""

from __future__ import annotations

import importlib.util

import pytest

_missing = [name for name in ("gradio", "selenium") if importlib.util.find_spec(name) is None]
if _missing:
    raise pytest.UsageError(f"missing test dependencies: {', '.join(_missing)}; "
                            f"install them with `pip install -e \".[test]\"` (or `make venv`)")
