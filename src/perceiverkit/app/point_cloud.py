"""The point-cloud tab: a shape sampled under a random pose, drawn in 3-D, and the class the model predicts, named
by the model's own labels."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import torch

from ..datasets.point_clouds import SHAPES, random_rotation, sample_shape
from .errors import InputError, shown_in_page
from .models import TabModel
from .pictures import point_cloud_figure

TOP_K = 3
NOISE = 0.02  # as the point-clouds data source's default


def class_names(model: Any) -> tuple[str, ...]:
    """The model's label names; a checkpoint without names that has one class per shape was trained on the
    point-clouds data source, which numbers its classes in :data:`SHAPES` order."""
    c = model.config
    if c.labels:
        return tuple(c.labels)
    return SHAPES if c.num_labels == len(SHAPES) else tuple(f"LABEL_{i}" for i in range(c.num_labels))


def posed_shape(shape: str, num_points: int, seed: int) -> np.ndarray:
    """``num_points`` points on ``shape`` under a uniformly random rotation, with small noise: ``(N, 3)``."""
    if shape not in SHAPES:
        raise InputError(f"unknown shape {shape!r}; pick one of {', '.join(SHAPES)}")
    if not 16 <= int(num_points) <= 8192:
        raise InputError(f"the number of points must lie between 16 and 8192, got {num_points}")
    generator = torch.Generator().manual_seed(int(seed))
    points = sample_shape(shape, int(num_points), generator).double() @ random_rotation(generator).T
    points = points + NOISE * torch.randn(points.shape, generator=generator, dtype=torch.float64)
    return points.float().numpy()


@torch.no_grad()
def classify_shape(tab: TabModel, shape: str, num_points: float, seed: float) -> tuple[Any, dict[str, float], str]:
    """The figure, the top classes → scores, and a Markdown line naming the true and the predicted shape."""
    points = posed_shape(shape, int(num_points), int(seed))
    model = tab.model
    inputs = torch.from_numpy(points)[None].to(device=model.device, dtype=next(model.parameters()).dtype)
    probs = model(inputs).logits[0].float().softmax(-1).cpu()
    names = class_names(model)
    top = probs.topk(min(TOP_K, len(names)))
    scores = {names[i]: float(s) for s, i in zip(top.values, top.indices, strict=True)}
    best = names[int(top.indices[0])]
    verdict = "right" if best == shape else "wrong"
    line = f"true shape **{shape}**, predicted **{best}** ({float(top.values[0]):.1%}): {verdict}"
    return point_cloud_figure(points, f"{shape}, {len(points)} points, seed {int(seed)}"), scores, line


def build_tab(tab: TabModel) -> None:
    gr.Markdown(f"A shape is sampled on its surface, rotated uniformly at random (seeded) and jittered as in "
                f"training, at unit size and centred; the model sees only the points, in any order. "
                f"{tab.describe()}")
    with gr.Row():
        with gr.Column():
            shape = gr.Dropdown(list(SHAPES), value="torus", label="shape", elem_id="point-cloud-shape")
            num_points = gr.Slider(16, 2048, value=256, step=16, label="points")
            seed = gr.Number(value=0, precision=0, label="pose seed")
            button = gr.Button("Sample and classify", variant="primary", elem_id="point-cloud-run")
        with gr.Column():
            plot = gr.Plot(label="the point cloud", elem_id="point-cloud-plot")
            labels = gr.Label(num_top_classes=TOP_K, label="predicted class", elem_id="point-cloud-labels")
            verdict = gr.Markdown(elem_id="point-cloud-verdict")
    button.click(shown_in_page(lambda s, n, r: classify_shape(tab, s, n, r)), [shape, num_points, seed],
                 [plot, labels, verdict])


__all__ = ["build_tab", "class_names", "classify_shape", "posed_shape"]
