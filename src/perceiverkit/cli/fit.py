"""``perceiverkit fit`` (and its alias ``train``): train a model from a YAML config and ``--set`` overrides."""

from __future__ import annotations

import argparse

from ._training import add_config_arguments, check_config, load_config

HELP = "train a model (fit); settings from a YAML config and --set overrides"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--overwrite", action="store_true",
                        help="train into an output_dir that holds a finished run, replacing its files "
                             "(the same as --set overwrite=true)")


def run(args: argparse.Namespace) -> None:
    config = load_config(args)  # before torch: a wrong value is one line at once
    if args.print_config:
        from ..train.config import dump_train_config

        print(dump_train_config(config), end="")
        return
    from ..train.config import check_output_dir

    check_output_dir(config)  # a finished run in output_dir: refused before torch loads, like a wrong value
    check_config(config)  # the task, its data source and the model config, before Lightning loads
    from ..train.run import fit

    result = fit(config)
    if not result.is_global_zero:  # one report per job, not one per process
        return
    if result.interrupted:
        print(f"stopped by SIGTERM; checkpoint saved to {result.checkpoint_dir / 'last.ckpt'} "
              f"(continue with --set resume=auto)")
        return
    print(f"model: {result.model_dir}")
    if result.best_checkpoint is not None:
        print(f"best checkpoint: {result.best_checkpoint}")
    for name, value in sorted(result.metrics.items()):
        print(f"  {name}: {value:.4f}")
