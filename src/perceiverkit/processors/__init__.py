"""Modality processors: turn raw inputs into arrays of features, and decoded arrays back into outputs."""

from .base import Preprocessed
from .image import ImagePreprocessor, ImagePreprocessorConfig
from .positions import GridPositions
from .text import TextPreprocessor, TiedEmbeddingDecoder

__all__ = [
    "GridPositions",
    "ImagePreprocessor",
    "ImagePreprocessorConfig",
    "Preprocessed",
    "TextPreprocessor",
    "TiedEmbeddingDecoder",
]
