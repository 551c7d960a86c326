"""``perceiverkit train``: train a model from a YAML config and ``--set`` overrides."""

from __future__ import annotations

import argparse

HELP = "train a model; settings from a YAML config and --set overrides"


def _config_names() -> list[str]:
    from ..resources import packaged_config_names

    return packaged_config_names()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", nargs="?", help="masked-lm (mlm), text-classification, image-classification, "
                        "optical-flow, multimodal-autoencoding or point-cloud-classification (default: the config's)")
    parser.add_argument("--config", help="YAML training config: a path, or the name of a packaged one ("
                        + ", ".join(_config_names()) + ")")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override settings, e.g. optim.lr=3e-4 trainer.max_steps=500 data.batch_size=64")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def run(args: argparse.Namespace) -> None:
    from ..resources import resolve_config
    from ..train import load_train_config, train
    from ..train.config import dump_train_config

    path = None if args.config is None else resolve_config(args.config)
    config = load_train_config(args.task, path, args.set)
    if args.print_config:
        print(dump_train_config(config), end="")
        return
    result = train(config)
    if not result.is_global_zero:  # one report per job, not one per process
        return
    if result.interrupted:
        print(f"stopped by SIGTERM; checkpoint saved to {result.checkpoint_dir / 'last.ckpt'} "
              f"(continue with --set resume=auto)")
        return
    print(f"model: {result.model_dir}")
    for name, value in sorted(result.metrics.items()):
        print(f"  {name}: {value:.4f}")
