"""Image classification from files, PIL images or arrays: top-k labels with probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..image_processing import ImageInput, ImageProcessor
from ..tasks.vision import ImageClassifier


@dataclass
class Prediction:
    label: str
    index: int
    probability: float


class ImageClassification:
    """Classify images with an :class:`ImageClassifier`, in batches."""

    def __init__(self, model: ImageClassifier, processor: ImageProcessor | None = None, batch_size: int = 8) -> None:
        if not isinstance(model, ImageClassifier):
            raise TypeError(f"image classification needs an ImageClassifier, got {type(model).__name__}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.model = model
        self.processor = processor or ImageProcessor()
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, images: Sequence[ImageInput], top_k: int = 5, progress: bool = False) -> list[list[Prediction]]:
        if not images:
            raise ValueError("no images given")
        if top_k < 1:
            raise ValueError(f"top_k must be positive, got {top_k}")
        names = self.model.label_names
        device = next(self.model.parameters()).device
        results: list[list[Prediction]] = []
        starts = range(0, len(images), self.batch_size)
        for start in tqdm(starts, desc="classifying", unit="batch", disable=not progress or len(starts) < 2):
            pixels = self.processor(list(images[start:start + self.batch_size]))["pixel_values"].to(device)
            probs = self.model(pixel_values=pixels).logits.float().softmax(-1)
            top = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
            for values, indices in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                results.append([Prediction(names[i], i, p) for p, i in zip(values, indices, strict=True)])
        return results
