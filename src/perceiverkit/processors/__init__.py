"""Modality processors: turn raw inputs into arrays of features, and decoded arrays back into outputs."""

from .base import Preprocessed
from .text import TextPreprocessor, TiedEmbeddingDecoder

__all__ = ["Preprocessed", "TextPreprocessor", "TiedEmbeddingDecoder"]
