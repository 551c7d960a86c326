"""Choosing a classical flow method's parameters on synthetic validation pairs, never on the evaluation pair.

The pairs come from :class:`~perceiverkit.datasets.flow_pairs.SyntheticFlowPairs`, the generator the shipped
flow model trained on, with the seed its training validated on (``FlowPairsData``: run seed 0 + 10,000), at the
size being tuned for. A setting's score is its mean end-point error over the pairs (each pair's EPE averaged
over its valid pixels, then averaged over pairs); the lowest score wins, ties going to the earlier setting.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import torch

from ..viz.flow import average_endpoint_error
from .baselines import DISPreset, DISSetting, FarnebackSetting, FlowBaseline

__all__ = ["VALIDATION_SEED", "FlowPair", "GridSearch", "dis_grid", "farneback_grid", "grid_search",
           "max_displacement_for", "mean_epe", "validation_pairs"]

#: The seed of the flow model's validation pairs: ``FlowPairsData`` uses the run seed (0 for the shipped model)
#: plus 10,000, so these pairs are disjoint from its training stream and from the Middlebury pair.
VALIDATION_SEED = 10_000

S = TypeVar("S", bound=FlowBaseline)

#: The shipped flow model trained on displacements up to 8 px; the Middlebury pair is 93 px wide at the scale
#: (0.125) where its disparities (up to 7.5 px) fit that range.
TRAINING_MAX_DISPLACEMENT, TRAINING_WIDTH = 8.0, 93


def max_displacement_for(width: int) -> float:
    """The peak displacement of validation pairs ``width`` pixels wide: the training range, scaled with the image
    (motion in pixels grows with resolution: 8 px at 93 px wide, 16 px at 185)."""
    return float(round(TRAINING_MAX_DISPLACEMENT * width / TRAINING_WIDTH))


@dataclass(frozen=True)
class FlowPair:
    """Two uint8 RGB frames (H, W, 3), the exact frame 1 → frame 2 flow (H, W, 2) and its valid pixels (H, W)."""

    frame1: np.ndarray
    frame2: np.ndarray
    flow: np.ndarray
    valid: np.ndarray


def validation_pairs(height: int, width: int, max_displacement: float, count: int = 64,
                     seed: int = VALIDATION_SEED) -> list[FlowPair]:
    """``count`` synthetic pairs of ``height`` × ``width`` with peak displacements uniform in
    [0.1, 1] × ``max_displacement``, frames rounded to uint8 as a camera would store them."""
    from ..datasets.flow_pairs import SyntheticFlowPairs

    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    pairs = SyntheticFlowPairs((height, width), count, max_displacement, seed=seed)
    out = []
    for item in (pairs[i] for i in range(count)):
        frames = item["frames"].round().clamp(0, 255).to(torch.uint8)  # (2, 3, H, W)
        frame1, frame2 = (np.ascontiguousarray(f.permute(1, 2, 0).numpy()) for f in frames)
        out.append(FlowPair(frame1, frame2, item["flow"].numpy(), item["valid"].numpy()))
    return out


def mean_epe(estimate: Callable[[np.ndarray, np.ndarray], np.ndarray], pairs: Sequence[FlowPair]) -> float:
    """The mean over ``pairs`` of the EPE of ``estimate(frame1, frame2)`` on each pair's valid pixels."""
    if not pairs:
        raise ValueError("need at least one pair to score")
    return float(np.mean([average_endpoint_error(estimate(p.frame1, p.frame2), p.flow, p.valid) for p in pairs]))


@dataclass(frozen=True)
class GridSearch(Generic[S]):
    """The outcome of a grid search: the winner, its score, every setting's score (in grid order), the time."""

    best: S
    best_epe: float
    scores: tuple[tuple[S, float], ...]
    seconds: float


def grid_search(settings: Sequence[S], pairs: Sequence[FlowPair]) -> GridSearch[S]:
    """Score every setting on ``pairs`` and keep the lowest mean EPE (the first of equal ones)."""
    if not settings:
        raise ValueError("the grid is empty")
    start = time.perf_counter()
    scores = tuple((setting, mean_epe(setting.flow, pairs)) for setting in settings)
    best, best_epe = min(scores, key=lambda entry: entry[1])  # min keeps the first of equal scores
    return GridSearch(best, best_epe, scores, time.perf_counter() - start)


def farneback_grid() -> list[FarnebackSetting]:
    """192 Farnebäck settings: pyramid scale × levels × window × iterations × polynomial fit × window shape.

    Windows from 13 to 41 px span the displacements at both tuned sizes (up to 8 and 16 px); a first, smaller
    grid (windows 5–29 px, levels 2–6) chose its largest window at both sizes, so the range was widened.
    ``levels`` beyond what the image allows are cut short by OpenCV.
    """
    return [FarnebackSetting(pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, gaussian)
            for pyr_scale, levels, winsize, iterations, (poly_n, poly_sigma), gaussian in itertools.product(
                (0.5, 0.8), (2, 4, 7), (13, 21, 29, 41), (3, 10), ((5, 1.1), (7, 1.5)), (False, True))]


def dis_grid() -> list[DISSetting]:
    """111 DIS settings: the three presets as shipped, and the ``medium`` preset with finest scale × patch
    size/stride × gradient-descent iterations × variational-refinement iterations replaced."""
    presets: tuple[DISPreset, ...] = ("ultrafast", "fast", "medium")
    varied = [DISSetting("medium", finest_scale, patch, stride, descent, refinement)
              for finest_scale, (patch, stride), descent, refinement in itertools.product(
                  (0, 1, 2), ((4, 2), (6, 2), (6, 3), (8, 2), (8, 4), (12, 4)), (25, 50), (0, 5, 20))]
    return [*(DISSetting(preset) for preset in presets), *varied]
