"""Optical flow between two images of any size, in pixels."""

from __future__ import annotations

import numpy as np
import torch

from ..image_processing import ImageInput, load_image
from ..tasks.flow import OpticalFlow
from .progress import progress_callback


def frame_pair(frame1: ImageInput, frame2: ImageInput) -> torch.Tensor:
    """Two images of the same size → a ``(1, 2, 3, H, W)`` float tensor of pixel values in [0, 255]."""
    arrays = [np.asarray(load_image(f)) for f in (frame1, frame2)]
    if arrays[0].shape != arrays[1].shape:
        raise ValueError(f"frames must have the same size, got {arrays[0].shape[:2]} and {arrays[1].shape[:2]}")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)[None].float()


class FlowEstimation:
    """Estimate flow from frame 1 to frame 2 with an :class:`OpticalFlow` model; returns ``(H, W, 2)`` pixels."""

    def __init__(self, model: OpticalFlow, tile_batch_size: int = 4) -> None:
        if not isinstance(model, OpticalFlow):
            raise TypeError(f"flow estimation needs an OpticalFlow model, got {type(model).__name__}")
        self.model = model
        self.tile_batch_size = tile_batch_size

    @torch.no_grad()
    def __call__(self, frame1: ImageInput, frame2: ImageInput, progress: bool = False) -> np.ndarray:
        frames = frame_pair(frame1, frame2).to(self.model.device)
        with progress_callback("flow tiles", "tile", progress) as report:
            out = self.model(frames, tile_batch_size=self.tile_batch_size, progress=report)
        return out.flow[0].float().cpu().numpy()
