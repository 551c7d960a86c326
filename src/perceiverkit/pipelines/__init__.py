"""Task pipelines: raw inputs in, readable results out."""

from .fill_mask import FilledText, FillMask

__all__ = ["FillMask", "FilledText"]
