"""``perceiverkit generate``: continue a prompt with a causal language model (Perceiver AR), streaming the text."""

from __future__ import annotations

import argparse
import sys

from ._common import add_device_arguments, load_pipeline

HELP = "continue a prompt with a causal language model (Perceiver AR), streaming the text as it is generated"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="the text to continue")
    parser.add_argument("--model", required=True,
                        help="checkpoint directory of a causal-lm model (perceiverkit train writes one), or a hub id")
    parser.add_argument("--max-new-tokens", type=int, default=200, help="tokens (bytes) to generate (default 200)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="sample with this temperature (default: greedy unless --top-k or --top-p is given, "
                             "then 1.0)")
    parser.add_argument("--top-k", type=int, default=None, help="sample from the k most likely tokens only")
    parser.add_argument("--top-p", type=float, default=None,
                        help="sample from the most likely tokens whose probability reaches p (nucleus sampling)")
    parser.add_argument("--num-latents", type=int, default=None,
                        help="latent window (default: the model's num_latents)")
    parser.add_argument("--seed", type=int, default=None, help="seed for sampling (reproducible output)")
    add_device_arguments(parser)


def run(args: argparse.Namespace) -> None:
    do_sample = any(value is not None for value in (args.temperature, args.top_k, args.top_p))
    generate = load_pipeline("text-generation", args, max_new_tokens=args.max_new_tokens, do_sample=do_sample,
                             temperature=1.0 if args.temperature is None else args.temperature, top_k=args.top_k,
                             top_p=args.top_p, num_latents=args.num_latents, seed=args.seed)
    pieces = generate.stream(args.prompt)  # checks the prompt and settings before anything is printed
    sys.stdout.write(args.prompt)
    sys.stdout.flush()
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
