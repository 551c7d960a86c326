"""Image classification from files, PIL images or arrays: the ``top_k`` labels with scores, as Transformers'
pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import torch

from ..image_processing import ImageInput, ImageProcessor
from ..tasks.vision import ImageClassifier
from .progress import batches
from .results import ClassificationResult, check_batch_size, check_top_k, top_labels


class ImageClassification:
    """Classify images with an :class:`ImageClassifier`, in batches; scores are a softmax over the labels."""

    def __init__(self, model: ImageClassifier, processor: ImageProcessor | None = None, top_k: int = 5,
                 batch_size: int = 8) -> None:
        if not isinstance(model, ImageClassifier):
            raise TypeError(f"image classification needs an ImageClassifier, got {type(model).__name__}")
        self.model = model
        self.processor = processor or model.image_processor  # the settings saved with the model
        self.top_k = check_top_k(top_k)
        self.batch_size = check_batch_size(batch_size)

    @overload
    def __call__(self, images: ImageInput, top_k: int | None = None,
                 progress: bool = False) -> list[ClassificationResult]: ...
    @overload
    def __call__(self, images: list[ImageInput] | tuple[ImageInput, ...], top_k: int | None = None,
                 progress: bool = False) -> list[list[ClassificationResult]]: ...

    def __call__(self, images: ImageInput | Sequence[ImageInput], top_k: int | None = None,
                 progress: bool = False) -> list[ClassificationResult] | list[list[ClassificationResult]]:
        """For one image, its ``top_k`` results (``label``, ``score``), best first; for a list, one list each."""
        results = self.predict(images, top_k, progress)
        return results if isinstance(images, (list, tuple)) else results[0]

    @torch.no_grad()
    def predict(self, images: ImageInput | Sequence[ImageInput], top_k: int | None = None,
                progress: bool = False) -> list[list[ClassificationResult]]:
        """For every image, its ``top_k`` results; one image (not in a list or tuple) is a list of one."""
        top_k = check_top_k(self.top_k if top_k is None else top_k)
        if not isinstance(images, (list, tuple)):
            images = [images]  # type: ignore[list-item]
        if not images:
            raise ValueError("no images given")
        names = self.model.label_names
        results: list[list[ClassificationResult]] = []
        for batch in batches(list(images), self.batch_size, "classifying", progress):
            pixels = self.processor(list(batch))["pixel_values"].to(self.model.device)
            results.extend(top_labels(self.model(pixel_values=pixels).logits.float().softmax(-1), names, top_k))
        return results
