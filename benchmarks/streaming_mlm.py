"""Masked language modelling on a text corpus larger than this machine's memory budget, in flat memory.

Writes a corpus of at least ``--size-gb`` GB of real text (the Jargon File's paragraphs and WordNet's glosses,
shuffled anew for each block, so no two blocks repeat) to ``--corpus``, then trains a tiny byte-level MLM on it
for ``--steps`` steps through ``perceiverkit.train.train`` with the ``text-corpus`` source (the file is
memory-mapped and read window by window), with Lightning's progress bar. Prints the corpus size, the number of
training windows, the time, and the process's peak resident memory (``getrusage`` ``ru_maxrss``: the most
memory the process ever held in RAM, file pages it touched included).

    python benchmarks/streaming_mlm.py                         # 2 GB corpus under /tmp, 300 steps, one thread
    python benchmarks/streaming_mlm.py --size-gb 0.1 --steps 20   # a quick look
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_corpus(path: Path, size: int, seed: int = 0) -> int:
    """Write at least ``size`` bytes of shuffled Jargon File paragraphs and WordNet glosses; returns the size.
    An existing file of at least ``size`` bytes is kept (generating takes a minute)."""
    from perceiverkit.datasets import read_jargon_file, wordnet_gloss_corpus

    if path.is_file() and path.stat().st_size >= size:
        return path.stat().st_size
    paragraphs = [p.strip() for p in read_jargon_file().split("\n\n") if p.strip()]
    documents = np.array([p.encode() for p in paragraphs + wordnet_gloss_corpus()], dtype=object)
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(path, "wb") as f:
        while written < size:  # one shuffled pass over all documents per block (~17 MB each)
            block = b"\n\n".join(documents[rng.permutation(len(documents))]) + b"\n\n"
            f.write(block)
            written += len(block)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=2.0, help="corpus size in GB (10⁹ bytes), at least")
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/perceiverkit-streaming/corpus.txt"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--output-dir", type=Path, default=Path("/tmp/perceiverkit-streaming/run"))
    args = parser.parse_args(argv)
    torch_threads = int(os.environ.get("OMP_NUM_THREADS", "1"))

    start = time.perf_counter()
    size = write_corpus(args.corpus, int(args.size_gb * 1e9))
    print(f"corpus: {args.corpus}, {size / 1e9:.2f} GB, written in {time.perf_counter() - start:.0f} s; "
          f"peak RSS so far {peak_rss_mb():.0f} MiB", flush=True)

    import torch

    from perceiverkit.config import config_from_dict
    from perceiverkit.train import train
    from perceiverkit.train.config import TrainConfig

    torch.set_num_threads(torch_threads)
    config = config_from_dict(TrainConfig, {
        "task": "masked-lm",
        "model": {"position_init": "local", "config": {
            "vocab_size": 262, "max_position_embeddings": args.sequence_length, "d_model": 64,
            "encoder": {"num_latents": 32, "d_latents": 64, "num_self_attends_per_block": 2,
                        "num_self_attention_heads": 4, "num_cross_attention_heads": 1},
            "decoder_num_heads": 1}},
        "data": {"source": "text-corpus", "batch_size": args.batch_size,
                 "options": {"corpus": "files", "paths": [str(args.corpus)],
                             "sequence_length": args.sequence_length, "val_fraction": 0.01}},
        "optim": {"lr": 0.001, "warmup_steps": 50},
        "trainer": {"max_steps": args.steps, "accelerator": "cpu", "log_every_n_steps": 50,
                    "val_check_interval": args.steps, "check_val_every_n_epoch": None, "limit_val_batches": 20,
                    "enable_progress_bar": True},
        "output_dir": str(args.output_dir),
    })
    before = peak_rss_mb()
    start = time.perf_counter()
    result = train(config)
    seconds = time.perf_counter() - start
    windows = (size * (1 - 0.01)) // (args.sequence_length - 2)
    print(f"trained {args.steps} steps of batch {args.batch_size} × {args.sequence_length} bytes in {seconds:.0f} s "
          f"({args.steps / seconds:.1f} steps/s, {torch_threads} thread(s)) over ~{windows:,.0f} training windows; "
          f"val/loss {result.metrics.get('val/loss', float('nan')):.3f}, "
          f"val/masked_accuracy {result.metrics.get('val/masked_accuracy', float('nan')):.3f}")
    print(f"peak resident memory: {peak_rss_mb():.0f} MiB (before training: {before:.0f} MiB; "
          f"corpus on disk: {size / 2**20:,.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
