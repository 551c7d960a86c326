"""A tqdm progress bar driven by ``progress(done, total)`` callbacks from long model calls."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm


@contextmanager
def progress_callback(desc: str, unit: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """Yield a ``report(done, total)`` function that advances a progress bar (closed on exit)."""
    bar = tqdm(desc=desc, unit=unit, disable=not enabled)

    def report(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        yield report
    finally:
        bar.close()
