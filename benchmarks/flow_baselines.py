"""Optical-flow baselines tuned honestly: Farnebäck and DIS chosen on synthetic validation pairs, then scored
with the shipped flow model on the Middlebury 2014 motorcycle pair at each resolution.

For each Middlebury resolution (a scale of skimage's 741×500 pair), 64 synthetic pairs of the same size come
from the generator the shipped model trained on, with the seed its training validated on (10,000); their peak
displacements are uniform in [0.1, 1] × a maximum that grows with the image (8 px at 93×62, the model's
training range, 16 px at 185×125). A grid of Farnebäck settings and one of DIS settings are scored on those
pairs; the best of each is then run once on the Middlebury pair, next to zero flow, the untuned settings and
the model. The Middlebury pair plays no part in the choice. Single-threaded (OpenCV and PyTorch).

    python benchmarks/flow_baselines.py                      # 93×62 and 185×125, ~5 min on one core
    python benchmarks/flow_baselines.py --scales 0.125 --pairs 16 --quick
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from perceiverkit.checkpoints import from_pretrained
from perceiverkit.evaluation.baselines import DEFAULT_DIS, DEFAULT_FARNEBACK, TUNED_SETTINGS, FlowBaseline
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
from perceiverkit.evaluation.middlebury import evaluate_flow_on_motorcycle, load_motorcycle
from perceiverkit.tasks.flow import OpticalFlow
from perceiverkit.viz.flow import average_endpoint_error


@dataclass
class Row:
    height: int
    width: int
    max_displacement: float
    results: dict[str, tuple[float, float]]  # column → (validation EPE, Middlebury EPE)
    tuned: dict[str, FlowBaseline]
    grids: dict[str, tuple[int, float]]  # method → (settings tried, seconds)


def _model_estimate(model: OpticalFlow) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    @torch.inference_mode()
    def estimate(frame1: np.ndarray, frame2: np.ndarray) -> np.ndarray:
        frames = torch.from_numpy(np.stack([frame1, frame2])).permute(0, 3, 1, 2)[None].float()
        return model(frames).flow[0].numpy()
    return estimate


def _zero(frame1: np.ndarray, frame2: np.ndarray) -> np.ndarray:
    return np.zeros((*frame1.shape[:2], 2), np.float32)


def _middlebury(setting: FlowBaseline, scale: float) -> float:
    pair = load_motorcycle(scale)
    return average_endpoint_error(setting.flow(pair.left, pair.right), pair.flow, pair.valid)


def run_resolution(scale: float, model: OpticalFlow, count: int, quick: bool) -> Row:
    pair = load_motorcycle(scale)
    height, width = pair.valid.shape
    max_displacement = max_displacement_for(width)
    pairs: list[FlowPair] = validation_pairs(height, width, max_displacement, count)
    peaks = np.array([np.linalg.norm(p.flow, axis=-1)[p.valid].max() for p in pairs])
    medians = np.array([np.median(np.linalg.norm(p.flow, axis=-1)[p.valid]) for p in pairs])
    disparity = -pair.flow[pair.valid][:, 0]
    print(f"\n== {width}×{height} (scale {scale}) ==")
    print(f"synthetic validation pairs: {count}, seed {VALIDATION_SEED}, max displacement {max_displacement:g} px: "
          f"per-pair peak {peaks.min():.1f}–{peaks.max():.1f} px (median {np.median(peaks):.1f}), "
          f"per-pair median |flow| {np.median(medians):.1f} px")
    print(f"Middlebury at this size: horizontal disparity {disparity.min():.1f}–{disparity.max():.1f} px "
          f"(median {np.median(disparity):.1f}), {pair.valid.mean():.1%} of pixels with ground truth")

    grids = {"Farnebäck": farneback_grid(), "DIS": dis_grid()}
    if quick:  # a few settings of each, to check the script end to end
        grids = {name: grid[:: max(1, len(grid) // 4)] for name, grid in grids.items()}
    tuned: dict[str, FlowBaseline] = {}
    grid_info: dict[str, tuple[int, float]] = {}
    results: dict[str, tuple[float, float]] = {}
    for name, grid in grids.items():
        search = grid_search(grid, pairs)
        tuned[name] = search.best
        grid_info[name] = (len(grid), search.seconds)
        ranked = sorted(search.scores, key=lambda entry: entry[1])
        print(f"{name}: {len(grid)} settings in {search.seconds:.0f} s; best validation EPE {search.best_epe:.3f} px "
              f"({search.best.describe()}); runner-up {ranked[1][1] if len(ranked) > 1 else math.nan:.3f} px")

    evaluation = evaluate_flow_on_motorcycle(model, scale, pair=pair)
    assert not isinstance(evaluation, tuple)
    results["zero flow"] = (mean_epe(_zero, pairs), evaluation.zero_flow_epe)
    results["Farnebäck default"] = (mean_epe(DEFAULT_FARNEBACK.flow, pairs), _middlebury(DEFAULT_FARNEBACK, scale))
    results["Farnebäck tuned"] = (mean_epe(tuned["Farnebäck"].flow, pairs), _middlebury(tuned["Farnebäck"], scale))
    results["DIS medium"] = (mean_epe(DEFAULT_DIS.flow, pairs), _middlebury(DEFAULT_DIS, scale))
    results["DIS tuned"] = (mean_epe(tuned["DIS"].flow, pairs), _middlebury(tuned["DIS"], scale))
    start = time.perf_counter()
    results["ours"] = (mean_epe(_model_estimate(model), pairs), evaluation.epe)
    print(f"ours on the {count} validation pairs and the Middlebury pair: {time.perf_counter() - start:.0f} s")
    stored = TUNED_SETTINGS.get((height, width))
    if stored is not None:
        agree = stored["farneback"] == tuned["Farnebäck"] and stored["dis"] == tuned["DIS"]
        print(f"perceiverkit.evaluation.baselines.TUNED_SETTINGS[{(height, width)}] "
              f"{'matches this choice' if agree else 'DIFFERS from this choice: update it'}")
    return Row(height, width, max_displacement, results, tuned, grid_info)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.125, 0.25],
                        help="Middlebury scales to tune and evaluate at (default 0.125 0.25: 93×62, 185×125)")
    parser.add_argument("--pairs", type=int, default=64, help="synthetic validation pairs per resolution (64)")
    parser.add_argument("--model", default="optical-flow-small", help="flow model (default the shipped one)")
    parser.add_argument("--quick", action="store_true", help="a quarter of each grid, to test the script")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import cv2

    cv2.setNumThreads(1)
    model = from_pretrained(args.model).eval()
    if not isinstance(model, OpticalFlow):
        parser.error(f"--model {args.model} is a {type(model).__name__}, not an optical-flow model")
    start = time.perf_counter()
    rows = [run_resolution(scale, model, args.pairs, args.quick) for scale in args.scales]

    columns = list(rows[0].results)
    print("\nEPE in px on the Middlebury motorcycle pair (mean EPE on the synthetic validation pairs in brackets)")
    print("| resolution | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for row in rows:
        best = min(middlebury for _, middlebury in row.results.values())
        cells = [(f"**{m:.2f}**" if m == best else f"{m:.2f}") + f" ({v:.2f})" for v, m in row.results.values()]
        print(f"| {row.width}×{row.height} (≤ {row.max_displacement:g} px) | " + " | ".join(cells) + " |")
    print("\nsettings:")
    print(f"  Farnebäck default: {DEFAULT_FARNEBACK.describe()}; DIS medium: {DEFAULT_DIS.describe()}")
    for row in rows:
        for name, setting in row.tuned.items():
            count, seconds = row.grids[name]
            print(f"  {row.width}×{row.height} {name} tuned ({count} settings, {seconds:.0f} s): {setting.describe()}"
                  f"\n      {setting!r}")
    print(f"\nseeds: synthetic validation pairs {VALIDATION_SEED}; OpenCV and the model are deterministic. "
          f"total {time.perf_counter() - start:.0f} s, one thread")
    return 0


if __name__ == "__main__":
    sys.exit(main())
