"""Optical-flow evaluation on the Middlebury 2014 "motorcycle" stereo pair bundled with scikit-image.

For a rectified stereo pair, left(x) ≈ right(x − d) with disparity d, so the flow from the left image to the
right one is (−d, 0). Pixels without ground-truth disparity (infinite in the data) are excluded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..tasks.flow import OpticalFlow
from ..viz import average_endpoint_error, save_flow_figure


@dataclass
class MotorcyclePair:
    left: np.ndarray  # (H, W, 3) uint8
    right: np.ndarray
    flow: np.ndarray  # (H, W, 2) ground-truth left→right flow in pixels, NaN where unknown
    valid: np.ndarray  # (H, W) bool


def load_motorcycle(scale: float = 1.0) -> MotorcyclePair:
    """The stereo pair and its ground-truth flow, optionally resized by ``scale`` (flow scaled to match)."""
    try:
        from skimage.data import stereo_motorcycle
    except ImportError:
        raise ImportError("the Middlebury pair comes with scikit-image: "
                          "pip install 'perceiverkit[baselines]'") from None
    if not 0 < scale <= 1:
        raise ValueError(f"scale must lie in (0, 1], got {scale}")
    left, right, disparity = stereo_motorcycle()
    if scale != 1:
        from PIL import Image

        height, width = disparity.shape
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        left, right = (np.asarray(Image.fromarray(im).resize(size, Image.Resampling.BICUBIC)) for im in (left, right))
        # Nearest sampling keeps "no ground truth" pixels from bleeding into their neighbours.
        rows = np.minimum((np.arange(size[1]) + 0.5) / scale, height - 1).astype(int)
        cols = np.minimum((np.arange(size[0]) + 0.5) / scale, width - 1).astype(int)
        disparity = disparity[rows][:, cols] * (size[0] / width)
    valid = np.isfinite(disparity)
    flow = np.stack([-disparity, np.zeros_like(disparity)], axis=-1).astype(np.float32)
    flow[~valid] = np.nan
    return MotorcyclePair(left, right, flow, valid)


@dataclass
class FlowEvaluation:
    """Average end-point error (pixels) of a model and of the zero-flow baseline on the same pixels."""

    epe: float
    zero_flow_epe: float
    height: int
    width: int
    valid_fraction: float

    def __str__(self) -> str:
        return (f"Middlebury motorcycle at {self.width}×{self.height}: EPE {self.epe:.3f} px "
                f"(zero flow {self.zero_flow_epe:.3f} px; {self.valid_fraction:.1%} of pixels have ground truth)")


@torch.no_grad()
def evaluate_flow_on_motorcycle(
    model: OpticalFlow, scale: float = 1.0, figure: str | Path | None = None, tile_batch_size: int = 4,
    return_flow: bool = False,
    pair: MotorcyclePair | None = None,
) -> FlowEvaluation | tuple[FlowEvaluation, np.ndarray]:
    """EPE of ``model``'s left→right flow on the motorcycle pair at ``scale``; optionally save a figure.

    With ``return_flow`` also returns the predicted flow ``(H, W, 2)`` in pixels. Pass ``pair`` (from
    :func:`load_motorcycle` at the same ``scale``) to reuse a pair already loaded for other methods.
    """
    pair = load_motorcycle(scale) if pair is None else pair
    frames = torch.from_numpy(np.stack([pair.left, pair.right])).permute(0, 3, 1, 2)[None].float()
    device = next(model.parameters()).device
    flow = model(frames.to(device), tile_batch_size=tile_batch_size).flow[0].float().cpu().numpy()  # (H, W, 2)
    if figure is not None:
        save_flow_figure((pair.left, pair.right), flow, figure, ground_truth=pair.flow, valid=pair.valid)
    height, width = pair.valid.shape
    evaluation = FlowEvaluation(
        epe=average_endpoint_error(flow, pair.flow, pair.valid),
        zero_flow_epe=average_endpoint_error(np.zeros_like(flow), pair.flow, pair.valid),
        height=height, width=width, valid_fraction=float(pair.valid.mean()),
    )
    return (evaluation, flow) if return_flow else evaluation
