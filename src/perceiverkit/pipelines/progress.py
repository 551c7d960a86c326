"""Progress bars for long pipeline work: batches of inputs, and ``progress(done, total)`` callbacks from long
model calls (flow tiles, decoded chunks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def batches(items: Sequence[T], batch_size: int, desc: str, progress: bool = False) -> Iterator[Sequence[T]]:
    """``items`` in slices of ``batch_size``, with a progress bar when ``progress`` and there is more than one."""
    starts = range(0, len(items), batch_size)
    for start in tqdm(starts, desc=desc, unit="batch", disable=not progress or len(starts) < 2):
        yield items[start:start + batch_size]


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
