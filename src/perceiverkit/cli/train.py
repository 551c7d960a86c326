"""``perceiverkit train``: the name ``fit`` had first, kept as an alias (same arguments, same behaviour)."""

from __future__ import annotations

from .fit import add_arguments, run

HELP = "train a model: an alias of fit"

__all__ = ["HELP", "add_arguments", "run"]
