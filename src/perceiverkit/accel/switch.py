"""The one global switch between the fast paths and the reference path (in the spirit of timm's ``use_fused_attn``).

Fast paths are on by default. Turned off, every model runs the reference code of :mod:`perceiverkit.layers`
(:func:`~perceiverkit.layers.attention.attend` in every attention, the encoder's inputs concatenated and projected
as Transformers does); outputs agree up to float rounding. The setting is read when a model runs, not when it is
built, so it applies to models that already exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

_enabled = True
#: Called with the new setting whenever it changes: each installs its path into ``layers/`` (on) or removes it
#: (off), so that the reference path runs no code of this package at all.
_installers: list[Callable[[bool], None]] = []


def on_switch(install: Callable[[bool], None]) -> None:
    """Register ``install(enabled)`` to follow the switch, and call it once with the current setting."""
    _installers.append(install)
    install(_enabled)


def use_fast_paths(enabled: bool) -> None:
    """Turn every speed path of :mod:`perceiverkit.accel` on (the default) or off for the whole process."""
    global _enabled
    if not isinstance(enabled, bool):
        raise TypeError(f"use_fast_paths expects True or False, got {enabled!r}")
    _enabled = enabled
    for install in _installers:
        install(enabled)


def fast_paths_enabled() -> bool:
    """Whether the speed paths may be taken (see :func:`use_fast_paths`)."""
    return _enabled


@contextmanager
def reference_path() -> Iterator[None]:
    """Run the enclosed code on the reference path, then restore the previous setting."""
    previous = _enabled
    use_fast_paths(False)
    try:
        yield
    finally:
        use_fast_paths(previous)
