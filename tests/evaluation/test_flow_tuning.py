"""Tuning flow baselines on synthetic validation pairs: the pairs are the flow model's validation pairs, the
search keeps the lowest mean EPE, and the stored tuned settings are what the search chooses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from perceiverkit.datasets.flow_pairs import SyntheticFlowPairs, warp
from perceiverkit.evaluation.baselines import DEFAULT_DIS, DEFAULT_FARNEBACK, TUNED_SETTINGS, tuned_setting
from perceiverkit.evaluation.flow_tuning import (
    VALIDATION_SEED,
    FlowPair,
    dis_grid,
    farneback_grid,
    grid_search,
    max_displacement_for,
    mean_epe,
    validation_pairs,
)


def test_validation_pairs_are_the_flow_models_validation_stream():
    """Same seed as the training run's validation set (the config that trained the shipped model)."""
    from perceiverkit.checkpoints import from_pretrained
    from perceiverkit.resources import packaged_config, packaged_model
    from perceiverkit.train.config import load_train_config
    from perceiverkit.train.run import build_datamodule

    config = load_train_config(path=packaged_config("flow-cost-volume"))
    model = from_pretrained(packaged_model("optical-flow-small"))
    train, val = build_datamodule(config, model).build()
    assert isinstance(val, SyntheticFlowPairs) and isinstance(train, SyntheticFlowPairs)
    assert val.seed == VALIDATION_SEED != train.seed


def test_validation_pairs_hold_their_exact_flow():
    pairs = validation_pairs(40, 56, 6.0, count=3)
    reference = SyntheticFlowPairs((40, 56), 3, 6.0, seed=VALIDATION_SEED)
    for index, pair in enumerate(pairs):
        assert pair.frame1.dtype == np.uint8 and pair.frame1.shape == (40, 56, 3)
        item = reference[index]
        np.testing.assert_array_equal(pair.flow, item["flow"].numpy())
        assert 0.6 - 1e-4 <= np.linalg.norm(pair.flow, axis=-1).max() <= 6.0 + 1e-4
        # frame 1 is frame 2 sampled at x + flow(x): warping frame 2 by the flow gives frame 1 back (up to the
        # rounding to uint8 and bilinear sampling of rounded pixels)
        frame2 = torch.from_numpy(pair.frame2).permute(2, 0, 1).float()
        warped, inside = warp(frame2, torch.from_numpy(pair.flow).permute(2, 0, 1))
        difference = (warped.permute(1, 2, 0).numpy() - pair.frame1)[inside.numpy() & pair.valid]
        assert np.abs(difference).mean() < 1.0
    with pytest.raises(ValueError, match="count must be at least 1"):
        validation_pairs(8, 8, 1.0, count=0)


@dataclass(frozen=True)
class Constant:
    """A 'method' that answers the same displacement everywhere: its EPE on a uniform flow is known exactly."""

    dx: float
    dy: float

    def flow(self, frame1: np.ndarray, frame2: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.float32([self.dx, self.dy]), (*frame1.shape[:2], 2)).copy()

    def describe(self) -> str:
        return f"constant ({self.dx}, {self.dy})"


def _uniform_pair(dx: float, dy: float, valid_rows: int = 4) -> FlowPair:
    frame = np.zeros((6, 5, 3), np.uint8)
    flow = np.broadcast_to(np.float32([dx, dy]), (6, 5, 2)).copy()
    valid = np.zeros((6, 5), bool)
    valid[:valid_rows] = True
    flow[~valid] = 1e6  # invalid pixels must not count
    return FlowPair(frame, frame, flow, valid)


def test_mean_epe_and_grid_search_against_closed_forms():
    pairs = [_uniform_pair(3.0, 4.0), _uniform_pair(0.0, 0.0, valid_rows=1)]
    # EPE of (0, 0): 5 on the first pair, 0 on the second → mean 2.5; of (3, 4): 0 and 5 → 2.5; of (1.5, 2): 2.5
    # on both → 2.5; of (3, 0): 4 and 3 → 3.5
    assert mean_epe(Constant(0, 0).flow, pairs) == pytest.approx(2.5)
    assert mean_epe(Constant(3, 0).flow, pairs) == pytest.approx(3.5)
    search = grid_search([Constant(3, 0), Constant(3, 4), Constant(0, 0), Constant(1.5, 2)], pairs)
    assert search.best == Constant(3, 4) and search.best_epe == pytest.approx(2.5)  # the first of three ties
    assert [score for _, score in search.scores] == pytest.approx([3.5, 2.5, 2.5, 2.5])
    assert grid_search([Constant(0, 1), Constant(3, 3.5)], pairs).best == Constant(3, 3.5)  # 2.55 < 2.62
    with pytest.raises(ValueError, match="grid is empty"):
        grid_search([], pairs)
    with pytest.raises(ValueError, match="at least one pair"):
        mean_epe(Constant(0, 0).flow, [])


def test_grids_are_distinct_valid_settings():
    farneback, dis = farneback_grid(), dis_grid()
    assert len(farneback) == len(set(farneback)) == 192 and DEFAULT_FARNEBACK not in farneback
    assert len(dis) == len(set(dis)) == 111 and DEFAULT_DIS in dis
    assert all(s.patch_stride is None or s.patch_size is None or s.patch_stride <= s.patch_size for s in dis)
    assert {s.finest_scale for s in dis} == {None, 0, 1, 2}
    assert {(s.poly_n, s.poly_sigma) for s in farneback} == {(5, 1.1), (7, 1.5)}


@pytest.mark.parametrize("size", sorted(TUNED_SETTINGS))
def test_tuned_settings_beat_the_untuned_ones_on_validation_pairs(size):
    """On (a subset of) the pairs they were chosen on, the chosen settings beat the untuned ones; nothing here
    looks at the Middlebury pair."""
    height, width = size
    pairs = validation_pairs(height, width, max_displacement_for(width), count=12)
    assert mean_epe(tuned_setting("farneback", height, width).flow, pairs) < mean_epe(DEFAULT_FARNEBACK.flow, pairs)
    assert mean_epe(tuned_setting("dis", height, width).flow, pairs) < mean_epe(DEFAULT_DIS.flow, pairs)


@pytest.mark.slow
def test_stored_tuned_settings_are_the_searchs_choice_at_93x62():
    """Rerunning the search of benchmarks/flow_baselines.py at 93×62 (~1–2 min) picks the stored settings."""
    import cv2

    cv2.setNumThreads(1)
    assert max_displacement_for(93) == 8.0
    pairs = validation_pairs(62, 93, 8.0, count=64)
    assert grid_search(farneback_grid(), pairs).best == tuned_setting("farneback", 62, 93)
    assert grid_search(dis_grid(), pairs).best == tuned_setting("dis", 62, 93)
