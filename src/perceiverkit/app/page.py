"""The playground's page: one tab per task, each told which model it runs, under a theme that loads no web font
(the page must work without the internet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from . import autoencoding, fill_mask, flow, image_classification, point_cloud
from .examples import Examples
from .models import TabModel

#: Tab name → its title on the page, in page order (the names of :data:`~perceiverkit.app.models.TAB_TASKS`).
TAB_TITLES = {"fill-mask": "Fill-mask", "image-classification": "Image classification",
              "optical-flow": "Optical flow", "autoencoding": "Autoencoding", "point-cloud": "Point clouds"}

# System fonts only: Gradio's default theme asks Google Fonts for its typeface, which an offline page cannot reach.
_SANS = ["ui-sans-serif", "system-ui", "sans-serif"]
_MONO = ["ui-monospace", "monospace"]


def theme() -> Any:  # Any: gr.themes.Base (Gradio's theme classes are not typed)
    return gr.themes.Default(font=_SANS, font_mono=_MONO)


def build_page(models: dict[str, TabModel], examples: Examples, folder: Path) -> gr.Blocks:
    """The Blocks of the whole page; ``folder`` receives the videos the autoencoding tab writes."""
    with gr.Blocks(title="perceiverkit playground", analytics_enabled=False) as page:
        gr.Markdown("# perceiverkit playground\nPerceiver IO models on this machine, one tab per task. "
                    "Nothing leaves this computer.")
        if examples.missing:
            gr.Markdown("Examples not available here: " + "; ".join(examples.missing))
        with gr.Tabs():
            with gr.Tab(TAB_TITLES["fill-mask"], id="fill-mask"):
                fill_mask.build_tab(models["fill-mask"])
            with gr.Tab(TAB_TITLES["image-classification"], id="image-classification"):
                image_classification.build_tab(models["image-classification"], examples.images)
            with gr.Tab(TAB_TITLES["optical-flow"], id="optical-flow"):
                flow.build_tab(models["optical-flow"], examples)
            with gr.Tab(TAB_TITLES["autoencoding"], id="autoencoding"):
                autoencoding.build_tab(models["autoencoding"], examples, folder)
            with gr.Tab(TAB_TITLES["point-cloud"], id="point-cloud"):
                point_cloud.build_tab(models["point-cloud"])
    return page


__all__ = ["TAB_TITLES", "build_page", "theme"]
