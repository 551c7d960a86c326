"""The image-classification tab: an uploaded or example image in, the top-5 labels with their scores out (ImageNet's
class names for 1000-class models, the checkpoint's own names otherwise)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from ..image_processing import load_image
from ..pipelines import pipeline
from .errors import InputError, require, shown_in_page
from .models import TabModel
from .pictures import enlarge

TOP_K = 5
IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"]


def read_uploaded_image(path: str | None, what: str = "image") -> np.ndarray:
    """The ``(H, W, 3)`` pixels of an uploaded image file, or :class:`InputError` naming the file."""
    path = require(path, what)
    try:
        return np.asarray(load_image(path))
    except ValueError:
        raise InputError(f"{Path(path).name} is not an image this app can read; upload a PNG, JPEG, BMP, GIF, "
                         "WebP or TIFF file") from None


def classify(classify_images: Any, path: str | None) -> tuple[np.ndarray, dict[str, float]]:
    """The image as the page shows it (enlarged) and its top labels → scores. Any: the pipeline."""
    image = read_uploaded_image(path)
    results = classify_images(path, top_k=TOP_K)
    return enlarge(image), {r["label"]: r["score"] for r in results}


def build_tab(tab: TabModel, examples: list[Path]) -> None:
    classify_images = pipeline("image-classification", tab.model)
    gr.Markdown(f"Upload an image or pick an example. {tab.describe()}")
    with gr.Row():
        with gr.Column():
            upload = gr.File(label="image file", file_types=IMAGE_TYPES, elem_id="image-upload")
            button = gr.Button("Classify", variant="primary", elem_id="image-run")
            if examples:
                gr.Examples([[str(p)] for p in examples], inputs=[upload],
                            label="Fashion-MNIST test images (the true class is in the file name)")
        with gr.Column():
            shown = gr.Image(label="the image", interactive=False, elem_id="image-shown")
            labels = gr.Label(num_top_classes=TOP_K, label=f"top {TOP_K} labels", elem_id="image-labels")
    button.click(shown_in_page(lambda p: classify(classify_images, p)), [upload], [shown, labels])


__all__ = ["IMAGE_TYPES", "build_tab", "classify", "read_uploaded_image"]
