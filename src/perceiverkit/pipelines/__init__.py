"""Task pipelines: raw inputs in, readable results out."""

from .fill_mask import FilledText, FillMask
from .flow import FlowEstimation, frame_pair
from .image_classification import ImageClassification, Prediction

__all__ = ["FillMask", "FilledText", "FlowEstimation", "ImageClassification", "Prediction", "frame_pair"]
