"""The sizes a benchmark workload comes in (a module of its own: the options and the workloads both read it)."""

from __future__ import annotations

import typing
from typing import Literal

#: Published sizes (for a GPU), sizes reduced for a 2-core CPU, and tiny ones (tests).
Scale = Literal["full", "cpu", "tiny"]
SCALES: tuple[Scale, ...] = typing.get_args(Scale)
