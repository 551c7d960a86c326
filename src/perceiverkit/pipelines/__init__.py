"""Task pipelines: raw inputs in, readable results out. ``pipeline(task, model)`` picks the one a task names."""

from .autoencode import Autoencode, AutoencodeResult, psnr, save_outputs
from .factory import pipeline
from .fill_mask import FilledText, FillMask
from .flow import FlowEstimation, frame_pair
from .image_classification import ImageClassification, Prediction

__all__ = [
    "Autoencode",
    "AutoencodeResult",
    "FillMask",
    "FilledText",
    "FlowEstimation",
    "ImageClassification",
    "Prediction",
    "frame_pair",
    "pipeline",
    "psnr",
    "save_outputs",
]
