"""How the playground reports bad input: one clear message in the page (``gr.Error``), and the app keeps serving.

A tab's work raises :class:`InputError` (or any error the command line would print in one line: the library's
own, a missing file, a ``ValueError`` raised by perceiverkit); :func:`shown_in_page` turns those into the page's
error message. Anything else is a bug: Gradio shows a generic error and the server log keeps the traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr

from ..cli._errors import one_line_message
from ..errors import PerceiverKitError

F = TypeVar("F", bound=Callable[..., Any])

#: The default of a handler's ``progress`` argument: Gradio then shows a progress bar that follows the
#: pipelines' tqdm bars (flow tiles, decoded chunks).
TRACKED_PROGRESS = gr.Progress(track_tqdm=True)


class InputError(PerceiverKitError, ValueError):
    """An input the tab cannot use (an unreadable upload, a missing field, sizes that do not match)."""


def require(value: str | None, what: str, hint: str = "upload one or pick an example below") -> str:
    """``value`` (an uploaded file's path, a text), or :class:`InputError` saying that ``what`` is needed."""
    if not value:
        raise InputError(f"no {what} given: {hint}")
    return value


def without_upload_folders(message: str, paths: Sequence[str | None]) -> str:
    """``message`` with each uploaded file's full path (Gradio's temporary folder) shortened to its name."""
    for path in paths:
        if path:
            message = message.replace(str(path), Path(path).name)
    return message


def shown_in_page(fn: F) -> F:
    """``fn`` with its input errors raised as ``gr.Error`` (one line in the page), uploaded paths shortened."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as error:
            message = one_line_message(error)
            if message is None:
                raise  # a bug: its traceback belongs in the server's log
            uploads = [a for a in args if isinstance(a, str) and Path(a).is_absolute()]
            raise gr.Error(without_upload_folders(message, uploads), print_exception=False) from None

    return wrapper  # type: ignore[return-value]


__all__ = ["TRACKED_PROGRESS", "InputError", "require", "shown_in_page", "without_upload_folders"]
