"""The base class of the errors perceiverkit raises on purpose about its caller's input.

Every library-defined exception derives from :class:`PerceiverKitError` as well as from the built-in type that
callers already catch (``ValueError``, ``FileNotFoundError``), so ``except ValueError`` keeps working and a
front end such as the command line can tell "your input is wrong" (one line) from a bug (a traceback).
This module imports nothing from the package: every layer may raise these.
"""

from __future__ import annotations


class PerceiverKitError(Exception):
    """An error about the caller's input (a value, a file, a checkpoint), with a message that says what was expected."""
