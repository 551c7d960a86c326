"""``perceiverkit evaluate``: a trained model's task metrics on the test or validation split of a data source."""

from __future__ import annotations

import argparse
import json
import logging

HELP = "a trained model's metrics on the test (or validation) split of a data source"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="MODEL",
                        help="a trained model: a model folder, a training run's output_dir or a .ckpt file")
    parser.add_argument("--data", metavar="SOURCE_OR_CONFIG",
                        help="a data source name (digits, image-folder, ...) or a YAML config with a data: section "
                             "(default: the config.yaml of the run the model comes from)")
    parser.add_argument("--split", choices=("test", "validation"), default="test",
                        help="which split to measure (default test; validation is carved from the training data)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="data settings, e.g. data.options.root=/data/fashion data.batch_size=256")
    parser.add_argument("--accelerator", default="auto", help="cpu, gpu, mps or auto (default auto)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")


def run(args: argparse.Namespace) -> None:
    from ..config import ConfigError
    from ..train.evaluate import evaluate, read_evaluation_data, run_config_of

    data = args.data or run_config_of(args.model)
    if data is None:
        raise ConfigError(f"{args.model} is not part of a training run with a config.yaml: name the data with "
                          "--data SOURCE_OR_CONFIG")
    evaluation_data = read_evaluation_data(data, args.set)
    from ..checkpoints import from_pretrained

    # The model (a preset or a missing folder is one line) and the data settings before Lightning's import, which
    # takes seconds: those errors answer at once.
    model = from_pretrained(args.model)
    import lightning.pytorch  # noqa: F401 (it sets its loggers' level when imported: quiet them after that)

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no device banners around the results
    metrics = evaluate(model, evaluation_data, args.split, accelerator=args.accelerator)
    if args.json:
        print(json.dumps({"model": str(args.model), "data": str(data), "split": args.split, "metrics": metrics}))
        return
    print(f"{args.model} on the {args.split} split of {data}:")
    for name, value in metrics.items():
        print(f"  {name}: {value:.4f}")
