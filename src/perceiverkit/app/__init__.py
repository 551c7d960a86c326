"""A local playground in the browser (``perceiverkit app``, the ``[app]`` extra): one Gradio tab per task, on the
shipped models or on checkpoints given with ``--model-dir``.

``start(AppSettings(port=...))`` serves in background threads and returns the URL (as the browser test does);
``serve`` blocks until Ctrl-C. See docs/app.md.
"""

from __future__ import annotations

import os

# Before Gradio is imported: it reads this to decide whether to send usage analytics, and this app sends nothing.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

try:
    import gradio  # noqa: F401  (imported here so that a missing extra is one clear line)
except ImportError:
    raise ImportError('the playground needs the app extra: pip install "perceiverkit[app]"') from None

from .server import AppSettings, RunningApp, serve, start

__all__ = ["AppSettings", "RunningApp", "serve", "start"]
