"""Task pipelines: raw inputs in, readable results out, under Transformers' names (``score``, ``label``,
``token_str``, ``sequence``). ``pipeline(task, model, device=, dtype=)`` picks the one a task names."""

from .autoencode import Autoencode, AutoencodeResult, psnr, save_outputs
from .factory import pipeline, pipeline_tasks
from .fill_mask import FillMask
from .flow import FlowEstimation, frame_pair
from .image_classification import ImageClassification
from .results import ClassificationResult, FillMaskResult
from .text_classification import TextClassification

__all__ = [
    "Autoencode",
    "AutoencodeResult",
    "ClassificationResult",
    "FillMask",
    "FillMaskResult",
    "FlowEstimation",
    "ImageClassification",
    "TextClassification",
    "frame_pair",
    "pipeline",
    "pipeline_tasks",
    "psnr",
    "save_outputs",
]
