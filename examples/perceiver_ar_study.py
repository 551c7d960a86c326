"""Does Perceiver AR learn, and does a longer context help? Held-out bits per byte against xz and zstd, and the same
model trained with contexts of 256, 1024 and 4096 bytes at an equal latent count and equal training batches.

The text is the offline corpus of the ``packed-text`` source (Jargon File + WordNet glosses, joined as that source
joins them); the held-out text is that source's validation region (``val_fraction`` 0.05, a contiguous block placed
by ``seed`` 0, never read in training). What makes the context lengths comparable:

- every run scores the same bytes. A training batch is ``batch`` windows that end at the same random offsets for
  every context length (drawn from one seeded generator, kept ``max(contexts)`` bytes inside the training text), so
  the ``batch × num_latents`` scored positions of step ``s`` are the same bytes in every run; only how much text
  precedes them differs. The loss is the next-byte cross-entropy of all ``num_latents`` latents (the last one's
  target is the byte after the window);
- evaluation scores the held-out bytes ``E`` from ``max(contexts)`` bytes into the held-out region on, in blocks
  of ``num_latents``, each block read with the ``context`` bytes that precede it (all inside the held-out region);
- the compressors are given exactly ``E``: alone, and after the training text and the held-out bytes before ``E``
  (``size(train + prefix + E) − size(train + prefix)``), so they have seen what the model saw.

Run from the repository root (single-threaded; ~35 min of one CPU core with the defaults, the settings of
docs/perceiver-ar.md)::

    OMP_NUM_THREADS=1 python examples/perceiver_ar_study.py --output runs/perceiver-ar-study \\
        --figure docs/results/perceiver-ar-context.png
    python examples/perceiver_ar_study.py --output runs/perceiver-ar-study --plot-only \\
        --figure docs/results/perceiver-ar-context.png

Runs made apart (one context per process, ``--reach`` the longest context) are joined with ``--merge``.

Writes ``OUTPUT/study.json`` (configuration, per-context curves, final held-out bits per byte, compressor figures,
samples) and one model directory per context (``OUTPUT/context-N``, loadable with ``from_pretrained``).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from perceiverkit.tasks.causal_lm import PerceiverAR, PerceiverARConfig
from perceiverkit.tokenizer import ByteTokenizer

OFFSET = ByteTokenizer.num_special_tokens  # byte b is token b + OFFSET, as in the packed-text source


@dataclass
class Corpus:
    """The corpus's bytes and the held-out region ``[val_start, val_end)``; the rest is training text."""

    data: bytes
    val_start: int
    val_end: int

    @property
    def train_bytes(self) -> bytes:
        return self.data[:self.val_start] + self.data[self.val_end:]


def load_corpus(corpus: str, val_fraction: float, seed: int) -> Corpus:
    """The packed-text source's documents and validation region (the same join and the same placement)."""
    from perceiverkit.datasets import ByteChunks
    from perceiverkit.train.causal_lm import corpus_readers

    readers = corpus_readers()
    documents = [document for name in corpus.split("+") for document in readers[name]()]
    chunks = ByteChunks(documents, 1, "val", val_fraction=val_fraction, seed=seed)
    data = bytes(chunks.source.read(0, len(chunks.source)))
    return Corpus(data, *chunks.val_region)


def window_ends(corpus: Corpus, reach: int, count: int, generator: torch.Generator) -> list[int]:
    """``count`` random window ends ``e`` inside the training text: ``data[e − reach : e + 1]`` lies in one
    training region (the window plus the byte its last latent predicts)."""
    regions = [(reach, corpus.val_start - 1), (corpus.val_end + reach, len(corpus.data) - 1)]
    regions = [(low, high) for low, high in regions if high > low]
    sizes = torch.tensor([high - low for low, high in regions], dtype=torch.float64)
    picks = torch.multinomial(sizes / sizes.sum(), count, replacement=True, generator=generator).tolist()
    ends = []
    for region in picks:
        low, high = regions[region]
        ends.append(low + int(torch.randint(high - low, (1,), generator=generator)))
    return ends


def tokens(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).long() + OFFSET


def batch_at(data: bytes, ends: list[int], context: int, latents: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``(B, context)`` ending at each ``e`` (exclusive) and targets ``(B, latents)``: the byte after each
    latent position, ``data[e − latents + 1 : e + 1]``."""
    inputs = torch.stack([tokens(data[end - context:end]) for end in ends])
    targets = torch.stack([tokens(data[end - latents + 1:end + 1]) for end in ends])
    return inputs, targets


def cross_entropy(model: PerceiverAR, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-byte cross-entropy (nats) of every latent of ``inputs`` against ``targets``."""
    logits = model(inputs, num_latents=targets.shape[1]).logits  # (B, M, vocab)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))


@torch.inference_mode()
def held_out_block_bits(model: PerceiverAR, corpus: Corpus, context: int, latents: int, first: int, count: int,
                        batch: int = 16) -> list[float]:
    """Bits per byte of each block of ``latents`` held-out bytes of ``data[first : first + count]`` (``count`` a
    multiple of ``latents``), each block read with the ``context`` bytes before its first byte's predecessor."""
    model.eval()
    ends = [first + latents * (k + 1) - 1 for k in range(count // latents)]
    blocks: list[float] = []
    for i in range(0, len(ends), batch):
        inputs, targets = batch_at(corpus.data, ends[i:i + batch], context, latents)
        logits = model(inputs, num_latents=latents).logits
        nats = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction="none")
        blocks += (nats.reshape(-1, latents).mean(dim=1) / math.log(2)).tolist()
    model.train()
    return blocks


def held_out_bits_per_byte(model: PerceiverAR, corpus: Corpus, context: int, latents: int, first: int,
                           count: int, batch: int = 16) -> float:
    """Bits per byte of the held-out bytes ``data[first : first + count]`` (the mean of equal-sized blocks)."""
    blocks = held_out_block_bits(model, corpus, context, latents, first, count, batch)
    return sum(blocks) / len(blocks)


def paired_differences(study: dict) -> list[dict[str, float]]:
    """Each longer context against the shortest on the same held-out blocks: the mean difference in bits per byte
    (negative: the longer context is better), its standard error over blocks, and the share of blocks it wins."""
    runs = sorted(study["runs"], key=lambda run: run["context"])
    base = runs[0]
    rows = []
    for run in runs[1:]:
        differences = [a - b for a, b in zip(run["block_bits"], base["block_bits"], strict=True)]
        mean = sum(differences) / len(differences)
        variance = sum((d - mean) ** 2 for d in differences) / (len(differences) - 1)
        rows.append({"context": run["context"], "against": base["context"], "mean_difference": mean,
                     "standard_error": math.sqrt(variance / len(differences)),
                     "blocks_better": sum(d < 0 for d in differences) / len(differences)})
    return rows


def compressed_size(tool: list[str], data: bytes) -> int:
    """Bytes of ``data`` compressed by ``tool`` (reading stdin, writing stdout)."""
    return len(subprocess.run(tool, input=data, stdout=subprocess.PIPE, check=True).stdout)


COMPRESSORS = {"xz -9": ["xz", "-9", "-c"], "zstd --ultra -22": ["zstd", "--ultra", "-22", "-c"]}


def compressor_baselines(corpus: Corpus, first: int, count: int) -> dict[str, dict[str, float]]:
    """Bits per byte of ``E = data[first : first + count]`` for each compressor: ``E`` alone, and
    ``size(train + prefix + E) − size(train + prefix)`` where prefix is the held-out text before ``E``."""
    evaluated = corpus.data[first:first + count]
    seen = corpus.train_bytes + corpus.data[corpus.val_start:first]
    result = {}
    for name, tool in COMPRESSORS.items():
        if shutil.which(tool[0]) is None:
            raise SystemExit(f"{tool[0]} is not installed; install it (apt-get install xz-utils zstd) and rerun")
        alone = compressed_size(tool, evaluated)
        after = compressed_size(tool, seen + evaluated) - compressed_size(tool, seen)
        result[name] = {"alone": 8 * alone / count, "after_training_text": 8 * after / count}
    return result


def learning_rate(step: int, steps: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_one(args: argparse.Namespace, corpus: Corpus, context: int, reach: int) -> dict[str, object]:
    torch.manual_seed(args.seed)
    config = PerceiverARConfig(d_model=args.d_model, num_latents=args.latents, num_self_attention_layers=args.layers,
                               num_heads=args.heads, num_cross_attention_heads=args.heads, widening_factor=4,
                               position_encoding="rotary")
    model = PerceiverAR(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    # One generator per run with the same seed: every context length sees the same window ends at every step.
    generator = torch.Generator().manual_seed(args.seed)
    # A fixed held-out subset for the curve (evenly spread over E); the full E is scored once at the end.
    curve_first = corpus.val_start + reach
    curve_count = (args.eval_bytes // args.latents) * args.latents
    stride = max(args.latents, (curve_count // args.curve_blocks) // args.latents * args.latents)
    curve_ends = [curve_first + k * stride + args.latents - 1 for k in range(args.curve_blocks)]
    curve: list[tuple[int, float]] = []
    losses: list[tuple[int, float]] = []
    started = time.perf_counter()
    model.train()
    for step in range(args.steps + 1):
        if step % args.eval_every == 0 or step == args.steps:
            with torch.inference_mode():
                model.eval()
                inputs, targets = batch_at(corpus.data, curve_ends, context, args.latents)
                bpb = float(cross_entropy(model, inputs, targets)) / math.log(2)
                model.train()
            curve.append((step, bpb))
            print(f"context {context} step {step}: held-out subset {bpb:.4f} bits/byte "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
        if step == args.steps:
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.steps, args.lr, args.warmup)
        inputs, targets = batch_at(corpus.data, window_ends(corpus, reach, args.batch, generator), context,
                                   args.latents)
        loss = cross_entropy(model, inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append((step, float(loss.detach()) / math.log(2)))
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    blocks = held_out_block_bits(model, corpus, context, args.latents, curve_first, curve_count)
    final = sum(blocks) / len(blocks)
    eval_seconds = time.perf_counter() - started
    print(f"context {context}: held-out {final:.4f} bits/byte over {curve_count} bytes "
          f"(train {train_seconds:.0f} s, eval {eval_seconds:.0f} s)", flush=True)
    model.save_pretrained(Path(args.output) / f"context-{context}")
    return {"context": context, "config": asdict(config), "train_seconds": train_seconds,
            "eval_seconds": eval_seconds, "held_out_bits_per_byte": final, "curve": curve,
            "train_bits_per_byte": losses[::10], "parameters": sum(p.numel() for p in model.parameters()),
            "block_bits": blocks}


@torch.inference_mode()
def samples(model: PerceiverAR, prompt: bytes, new_tokens: int, seed: int, top_p: float,
            truth: bytes) -> dict[str, str]:
    """Greedy and nucleus-sampled continuations of ``prompt``, next to the text that really follows it."""
    model.eval()
    ids = tokens(prompt)[None]
    greedy = model.generate(ids, new_tokens)
    sampled = model.generate(ids, new_tokens, do_sample=True, top_p=top_p,
                             generator=torch.Generator().manual_seed(seed))

    def text(out: torch.Tensor) -> str:
        return bytes((out[0, ids.shape[1]:] - OFFSET).clamp(0, 255).tolist()).decode("utf-8", "replace")

    return {"prompt_end": prompt[-300:].decode("utf-8", "replace"), "prompt_bytes": str(len(prompt)),
            "greedy": text(greedy), f"top_p={top_p}, seed={seed}": text(sampled),
            "actual continuation": truth.decode("utf-8", "replace")}


def plot(study: dict, figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for run in study["runs"]:
        steps, bpb = [point[0] for point in run["curve"]], [point[1] for point in run["curve"]]
        ax.plot(steps, bpb, marker="o", markersize=3, label=f"context {run['context']} B "
                                                            f"(final {run['held_out_bits_per_byte']:.3f})")
    styles = iter([":", "--", "-.", (0, (1, 3))])
    for name, figures in study.get("compressors", {}).items():
        ax.axhline(figures["after_training_text"], color="grey", linestyle=next(styles),
                   label=f"{name}, after training text ({figures['after_training_text']:.3f})")
    cfg = study["settings"]
    ax.set_xlabel("training step (step 0, ~8 bits per byte, above the frame)")
    ax.set_ylabel("held-out bits per byte")
    ax.set_title(f"Perceiver AR, {cfg['latents']} latents, d_model {cfg['d_model']}, {cfg['layers']} layers, "
                 f"batch {cfg['batch']}", fontsize=9)
    # Step 0 (~8 bits: uniform over 262 ids) would flatten the interesting part; it is left above the frame.
    ax.set_ylim(top=4.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=120)
    print(f"wrote {figure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="runs/perceiver-ar-study")
    parser.add_argument("--contexts", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--latents", type=int, default=64)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--curve-blocks", type=int, default=32, help="held-out blocks scored for the curve")
    parser.add_argument("--eval-bytes", type=int, default=65536, help="held-out bytes scored at the end (E)")
    parser.add_argument("--corpus", default="jargon+wordnet")
    parser.add_argument("--val-fraction", type=float, default=0.05)
    parser.add_argument("--prompt-bytes", type=int, default=4096,
                        help="the samples' prompt: this many held-out bytes before the scored ones")
    parser.add_argument("--sample-tokens", type=int, default=200)
    parser.add_argument("--reach", type=int, default=None,
                        help="longest context of the study (default max(--contexts)): fixes the training windows' "
                             "ends and the evaluated bytes, so that runs made apart are comparable")
    parser.add_argument("--merge", nargs="*", default=[],
                        help="study.json files of runs made apart (same settings but --contexts): their runs are "
                             "added to OUTPUT/study.json, then samples and figure as after a full study")
    parser.add_argument("--skip-compressors", action="store_true",
                        help="leave the compressor baselines out (a run to be merged into a study that has them)")
    parser.add_argument("--plot-only", action="store_true", help="redraw the figure from OUTPUT/study.json")
    parser.add_argument("--figure", default=None, help="PNG of the curves (default OUTPUT/perceiver-ar-context.png)")
    args = parser.parse_args()

    torch.set_num_threads(1)
    output = Path(args.output)
    figure = Path(args.figure) if args.figure else output / "perceiver-ar-context.png"
    record = output / "study.json"
    if args.plot_only:
        plot(json.loads(record.read_text()), figure)
        return
    if args.merge:
        merge(record, [Path(path) for path in args.merge], args, figure)
        return
    output.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus(args.corpus, args.val_fraction, 0)
    reach = args.reach or max(args.contexts)
    if reach < max(args.contexts):
        raise SystemExit(f"--reach ({reach}) must be at least the longest context ({max(args.contexts)})")
    eval_count = (args.eval_bytes // args.latents) * args.latents
    if corpus.val_start + reach + eval_count > corpus.val_end:
        raise SystemExit(f"the held-out region ({corpus.val_end - corpus.val_start} bytes) is shorter than the "
                         f"longest context ({reach}) + --eval-bytes ({eval_count}); lower --eval-bytes")
    study: dict = {"settings": vars(args) | {"val_region": [corpus.val_start, corpus.val_end],
                                             "evaluated_bytes": [corpus.val_start + reach,
                                                                 corpus.val_start + reach + eval_count],
                                             "corpus_bytes": len(corpus.data), "torch": torch.__version__},
                   "runs": []}
    if not args.skip_compressors:
        study["compressors"] = compressor_baselines(corpus, corpus.val_start + reach, eval_count)
        print(json.dumps(study["compressors"], indent=1), flush=True)
    for context in args.contexts:
        study["runs"].append(train_one(args, corpus, context, reach))
        record.write_text(json.dumps(study, indent=1))
    finish(study, record, output, args, figure)


def finish(study: dict, record: Path, output: Path, args: argparse.Namespace, figure: Path) -> None:
    """Samples from the longest-context model, the record and the figure."""
    study["runs"].sort(key=lambda run: run["context"])
    longest = study["runs"][-1]["context"]
    model = PerceiverAR.from_pretrained(output / f"context-{longest}")
    corpus = load_corpus(args.corpus, args.val_fraction, 0)
    first, end = study["settings"]["evaluated_bytes"]
    for run in study["runs"]:  # per-block figures for the paired comparison (runs recorded without them)
        if "block_bits" not in run:
            trained = PerceiverAR.from_pretrained(output / f"context-{run['context']}")
            run["block_bits"] = held_out_block_bits(trained, corpus, run["context"], trained.config.num_latents,
                                                    first, end - first)
    study["paired"] = paired_differences(study)
    for row in study["paired"]:
        print(f"context {row['context']} against {row['against']}: {row['mean_difference']:+.4f} ± "
              f"{row['standard_error']:.4f} bits per byte (standard error over blocks), better on "
              f"{100 * row['blocks_better']:.1f} % of the blocks")
    # The prompt is the held-out text just before the scored bytes E (as long as the longest context), so the
    # model continues real unseen text, and what really follows can be shown beside it.
    prompt = corpus.data[first - min(args.prompt_bytes, first - corpus.val_start):first]
    truth = corpus.data[first:first + args.sample_tokens]
    study["samples"] = samples(model, prompt, args.sample_tokens, args.seed, 0.9, truth) | {"context": longest}
    record.write_text(json.dumps(study, indent=1))
    print(json.dumps(study["samples"], indent=1))
    plot(study, figure)


def merge(record: Path, others: list[Path], args: argparse.Namespace, figure: Path) -> None:
    """Add the runs of ``others`` (made apart, with the same settings) to ``record``; refuse runs that differ in
    anything but their contexts, since their figures would not be comparable."""
    study = json.loads(record.read_text())
    ignored = {"contexts", "output", "merge", "figure", "plot_only", "prompt", "prompt_bytes"}

    def comparable(settings: dict) -> dict:
        kept = {key: value for key, value in settings.items() if key not in ignored | {"skip_compressors"}}
        return kept | {"reach": settings.get("reach") or max(settings["contexts"])}

    for path in others:
        other = json.loads(path.read_text())
        if comparable(other["settings"]) != comparable(study["settings"]):
            raise SystemExit(f"{path} was made with other settings than {record}; its runs are not comparable")
        known = {run["context"] for run in study["runs"]}
        study["runs"] += [run for run in other["runs"] if run["context"] not in known]
        for run in other["runs"]:  # its model directory sits beside its record
            source = path.parent / f"context-{run['context']}"
            if source.is_dir() and not (record.parent / source.name).exists():
                shutil.copytree(source, record.parent / source.name)
    finish(study, record, record.parent, args, figure)


if __name__ == "__main__":
    main()
