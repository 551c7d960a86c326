"""The optical-flow tab: two frames in (or the Middlebury motorcycle pair), the colour-coded flow, arrows over the
first frame, and the end-point error when a ground-truth flow is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from ..pipelines import pipeline
from ..viz import average_endpoint_error, flow_to_color
from .errors import TRACKED_PROGRESS, InputError, shown_in_page
from .examples import Examples
from .image_classification import IMAGE_TYPES, read_uploaded_image
from .models import TabModel
from .pictures import enlarge, flow_arrows

FLO_MAGIC = 202021.25  # the first float of a Middlebury .flo file


def read_ground_truth(path: str) -> np.ndarray:
    """A ground-truth flow ``(H, W, 2)`` in pixels from a ``.npy`` array or a Middlebury ``.flo`` file; NaN (or
    the .flo format's 1e9 and above) marks pixels without a measurement."""
    name = Path(path).name
    try:
        if path.endswith(".flo"):
            data = np.fromfile(path, np.float32)
            if data.size < 3 or data[0] != FLO_MAGIC:
                raise InputError(f"{name} is not a Middlebury .flo file (its first 4 bytes are not 'PIEH')")
            width, height = (int(v) for v in data[1:3].view(np.int32))
            if data.size != 3 + height * width * 2:
                raise InputError(f"{name}: its header says {width}×{height}, but it holds {data.size - 3} values")
            flow = data[3:].reshape(height, width, 2).astype(np.float32)
            flow[np.abs(flow) >= 1e9] = np.nan
        else:
            flow = np.load(path, allow_pickle=False).astype(np.float32)
    except (OSError, ValueError) as error:
        if isinstance(error, InputError):
            raise
        raise InputError(f"{name} is neither a .npy array nor a .flo file ({error})") from None
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise InputError(f"ground truth {name} must have shape (height, width, 2), got {flow.shape}")
    return flow


def estimate_flow(estimate: Any, first: str | None, second: str | None,
                  truth: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """The colour-coded flow, the arrows over frame 1, and a Markdown line of statistics (EPE with ground truth).
    Any: the FlowEstimation pipeline."""
    frames = [read_uploaded_image(first, "first frame"), read_uploaded_image(second, "second frame")]
    if frames[0].shape != frames[1].shape:
        raise InputError(f"the frames must have the same size; got {frames[0].shape[1]}×{frames[0].shape[0]} and "
                         f"{frames[1].shape[1]}×{frames[1].shape[0]}")
    height, width = frames[0].shape[:2]
    flow = estimate(frames[0], frames[1], progress=True)  # (H, W, 2); progress=True: tqdm, which the page tracks
    magnitude = np.hypot(flow[..., 0], flow[..., 1])
    line = f"{width}×{height} pixels: mean |flow| {magnitude.mean():.2f} px, largest {magnitude.max():.2f} px"
    if truth:
        expected = read_ground_truth(truth)
        if expected.shape[:2] != (height, width):
            raise InputError(f"the ground truth is {expected.shape[1]}×{expected.shape[0]} but the frames are "
                             f"{width}×{height}")
        epe = average_endpoint_error(flow, expected)
        zero = average_endpoint_error(np.zeros_like(flow), expected)
        known = float(np.isfinite(expected).all(-1).mean())
        line += (f"  \n**EPE {epe:.2f} px** against the ground truth (zero flow: {zero:.2f} px; "
                 f"{known:.0%} of pixels have ground truth)")
    return enlarge(flow_to_color(flow), 372), flow_arrows(frames[0], flow), line


def build_tab(tab: TabModel, examples: Examples) -> None:
    estimate = pipeline("optical-flow", tab.model)
    gr.Markdown(f"Flow from frame 1 to frame 2, in pixels. Give a ground-truth flow (`.npy` of shape (H, W, 2) or "
                f"Middlebury `.flo`) to read the end-point error. {tab.describe()}")
    with gr.Row():
        with gr.Column():
            first = gr.File(label="frame 1", file_types=IMAGE_TYPES, elem_id="flow-first")
            second = gr.File(label="frame 2", file_types=IMAGE_TYPES, elem_id="flow-second")
            truth = gr.File(label="ground-truth flow (optional)", file_types=[".npy", ".flo"], elem_id="flow-truth")
            button = gr.Button("Estimate flow", variant="primary", elem_id="flow-run")
            if examples.flow:
                gr.Examples([[str(p) for p in examples.flow]], inputs=[first, second, truth],
                            label="Middlebury 2014 motorcycle pair with its ground truth (scikit-image)")
        with gr.Column():
            colour = gr.Image(label="flow (colour = direction, saturation = speed)", interactive=False,
                              elem_id="flow-colour")
            arrows = gr.Image(label="flow arrows over frame 1", interactive=False, elem_id="flow-arrows")
            stats = gr.Markdown(elem_id="flow-stats")
    def run(frame1: str | None, frame2: str | None, flow_file: str | None,
            progress: Any = TRACKED_PROGRESS) -> Any:
        return estimate_flow(estimate, frame1, frame2, flow_file)

    button.click(shown_in_page(run), [first, second, truth], [colour, arrows, stats])


__all__ = ["build_tab", "estimate_flow", "read_ground_truth"]
