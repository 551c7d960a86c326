"""Train one packaged config under several seeds and report each run's figures with their mean and spread.

For classification sources that have a test split (point clouds, Fashion-MNIST, digits) the test accuracy of each
run's final model is computed once, after training; otherwise the run's last validation metrics are reported.
Run from the repository root::

    python examples/seed_study.py --config point-clouds --seeds 0 1 2
    python examples/seed_study.py --config autoencoding --seeds 0 1 2 --metric val/video_psnr

Writes ``OUTPUT_DIR/seed-study.json`` (per-seed figures, mean, sample standard deviation, min, max).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def summarise(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="a packaged config's name or a path")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--metric", action="append", default=[],
                        help="a logged validation metric to report (repeatable), e.g. val/video_psnr")
    parser.add_argument("--set", nargs="*", default=[], help="training overrides for every run")
    parser.add_argument("--output", default=None, help="folder for the runs (default: the config's output_dir)")
    args = parser.parse_args()

    from perceiverkit.resources import resolve_config
    from perceiverkit.tasks.registry import get_task
    from perceiverkit.train import load_train_config, train
    from perceiverkit.train.datamodules import PerceiverDataModule
    from perceiverkit.train.evaluate import EvaluationData, evaluate

    runs: dict[int, dict[str, float]] = {}
    base = None
    for seed in args.seeds:
        config = load_train_config(None, resolve_config(args.config), args.set)
        base = Path(args.output or config.output_dir)
        config.seed, config.output_dir = seed, str(base / f"seed-{seed}")
        result = train(config)
        missing = [name for name in args.metric if name not in result.metrics]
        if missing:
            raise SystemExit(f"the run logged no {missing}; it logged {sorted(result.metrics)}")
        figures = {name: result.metrics[name] for name in args.metric}
        source = get_task(config.task).data_source_class(config.data.source)
        if source.build_test is not PerceiverDataModule.build_test:  # the source has a test split
            # The task's own test step, as `perceiverkit evaluate` runs it: the test split is read here, once.
            tested = evaluate(result.model_dir, EvaluationData(config.data, config.seed, config.task_options),
                              "test", accelerator="cpu")
            if "test/accuracy" in tested:
                figures["test_accuracy"] = tested["test/accuracy"]
        runs[seed] = figures
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items()), flush=True)
    names = sorted({name for figures in runs.values() for name in figures})
    report = {"config": args.config, "overrides": args.set, "seeds": args.seeds, "runs": runs,
              "summary": {name: summarise([runs[s][name] for s in args.seeds]) for name in names}}
    for name, stats in report["summary"].items():
        print(f"{name}: mean {stats['mean']:.4f} ± {stats['std']:.4f} (sample std over {len(args.seeds)} seeds; "
              f"min {stats['min']:.4f}, max {stats['max']:.4f})")
    assert base is not None
    (base / "seed-study.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
