"""Serving the playground on this machine: its settings, and a server that neither phones home nor opens a share
link (Gradio's analytics, share tunnel, server-side rendering and MCP endpoint are all off)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError
from .examples import make_examples
from .models import choose_models
from .page import build_page, theme


@dataclass(frozen=True)
class AppSettings:
    """What ``perceiverkit app`` was asked for."""

    model_dirs: tuple[str, ...] = ()
    """Checkpoints (directories, Transformers folders, hub ids), each replacing the default model of its task."""
    host: str = "127.0.0.1"
    port: int = 7860
    device: str = "auto"
    dtype: str = "float32"
    quiet: bool = True
    """Keep Gradio's own start-up lines (which suggest ``share=True``) out of the terminal."""


@dataclass
class RunningApp:
    """A playground serving in background threads: ``url`` to open, :meth:`close` to stop it."""

    url: str
    page: object
    workspace: tempfile.TemporaryDirectory[str] = field(repr=False)

    def close(self) -> None:
        self.page.close()  # type: ignore[attr-defined]
        self.workspace.cleanup()


def start(settings: AppSettings) -> RunningApp:
    """Load the models, write the examples and serve the page; returns once the server answers."""
    if not 0 < settings.port < 65536:
        raise ConfigError(f"--port must lie between 1 and 65535, got {settings.port}")
    models = choose_models(settings.model_dirs, settings.device, settings.dtype)  # a bad checkpoint fails here
    workspace = tempfile.TemporaryDirectory(prefix="perceiverkit-app-")
    folder = Path(workspace.name)
    examples = make_examples(folder / "examples")
    page = build_page(models, examples, folder)
    try:
        page.queue(default_concurrency_limit=1)  # one model call at a time: they share the CPU's cores
        _, url, _ = page.launch(
            server_name=settings.host, server_port=settings.port, share=False, prevent_thread_lock=True,
            show_error=True, quiet=settings.quiet, ssr_mode=False, mcp_server=False, pwa=False,
            allowed_paths=[str(folder)], theme=theme(), footer_links=[])
    except BaseException as error:
        workspace.cleanup()
        if isinstance(error, OSError) and "Cannot find empty port" in str(error):
            # Gradio's message names its own environment variable and launch() argument, not this command's flag.
            raise ConfigError(f"port {settings.port} on {settings.host} is in use; pick a free one with --port") \
                from None
        raise
    return RunningApp(url=url, page=page, workspace=workspace)


def serve(settings: AppSettings) -> None:
    """Serve until interrupted (Ctrl-C)."""
    running = start(settings)
    print(f"perceiverkit playground at {running.url} (Ctrl-C to stop)", flush=True)
    try:
        running.page.block_thread()  # type: ignore[attr-defined]
    finally:
        running.close()


__all__ = ["AppSettings", "RunningApp", "serve", "start"]
