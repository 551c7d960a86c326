"""Perceiver AR on the CPU: ours against krasserm's ``perceiver-io`` 0.11 on identical weights (forward + backward
time and generation tokens/s), and our peak memory against the context length at a fixed latent count.

The peer is never a dependency: install it into a throwaway environment (its release pins Python < 3.11, hence
``--ignore-requires-python``; ``einops`` is the one module of its own it needs here) and point ``--peer-site`` at
that environment's ``site-packages``::

    python -m venv /tmp/peer
    /tmp/peer/bin/pip install --no-deps --ignore-requires-python "perceiver-io==0.11.*" einops
    OMP_NUM_THREADS=1 python benchmarks/perceiver_ar_speed.py speed --peer-site /tmp/peer/lib/python3.11/site-packages
    OMP_NUM_THREADS=1 python benchmarks/perceiver_ar_speed.py memory \\
        --contexts 1024 4096 16384 32768 65536 131072 --figure docs/results/perceiver-ar-memory.png

Only the peer's backend model (``perceiver.model.core.CausalSequenceModel``) is imported: its Transformers wrapper
and Lightning module are not, and ``fairscale`` (imported by the peer's modules for activation checkpointing, which
is off here) is replaced by an empty stand-in module when it is not installed.

Identical weights. The peer's model is built with the options that give our architecture (rotary positions on
the full head width in every layer, no absolute positions, a final LayerNorm, an output head tied without bias,
no prefix dropout) and its weights are copied into ours (:func:`peer_state_to_ours`); the script checks that the
logits agree (in float64, see :func:`in_float64`) before timing anything. What cannot be matched, and how the
copy handles it:

- the peer rotates interleaved channel pairs ``(2i, 2i + 1)`` of each head, we rotate ``(i, i + D/2)``: the rows of
  the query and key projections are permuted within each head (the attention scores are unchanged);
- the peer has no bias on the query/key/value projections, the self-attention output projections and the MLPs: our
  biases are set to zero;
- the peer normalises the latent positions' keys and values with the cross-attention's *query* LayerNorm (it
  appends the normalised latents to the normalised prefix), we normalise every context position with the
  key/value LayerNorm: identical outputs need those two LayerNorms equal (they are at initialisation; the check
  randomises them, equal to each other).

Generation. Ours is ``PerceiverAR.generate`` (its KV cache, exact: once the window slides the self-attention stack
is recomputed over it). The peer's ``generate`` needs Transformers 4.28; its caching rule is reproduced here
(:func:`peer_generate`, the logic of its ``prepare_inputs_for_generation``): once the latents reach ``max_latents``
the prefix grows by one and the self-attention caches are cut to the last ``max_latents - 1`` positions, which
keeps the deeper layers' keys and values of the window before (an approximation the peer makes for speed; its
tokens can differ from ours after the window starts sliding, and the table says from which step).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import resource
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from perceiverkit.benchmark.report import _cpu_name as cpu_name
from perceiverkit.tasks.causal_lm import PerceiverAR, PerceiverARConfig
from perceiverkit.tokenizer import ByteTokenizer

VOCAB = ByteTokenizer.vocab_size


def load_peer(site: str | None) -> tuple[Any, Any] | str:
    """The peer's ``(CausalSequenceModel, CausalSequenceModelConfig)``, or a sentence saying why it is absent."""
    if site:
        sys.path.append(site)  # after our own packages: our torch stays the one imported
    if importlib.util.find_spec("fairscale") is None:
        # The peer's modules import fairscale's checkpoint_wrapper at module level; it is used only with
        # activation checkpointing, which stays off here.
        fairscale, fairscale_nn = types.ModuleType("fairscale"), types.ModuleType("fairscale.nn")
        fairscale_nn.checkpoint_wrapper = None  # type: ignore[attr-defined]
        fairscale.nn = fairscale_nn  # type: ignore[attr-defined]
        sys.modules.setdefault("fairscale", fairscale)
        sys.modules.setdefault("fairscale.nn", fairscale_nn)
    try:
        core = importlib.import_module("perceiver.model.core")
    except ImportError as error:
        return f"perceiver-io is not importable ({error}); install it as this script's docstring says"
    return core.CausalSequenceModel, core.CausalSequenceModelConfig


def our_config(args: argparse.Namespace) -> PerceiverARConfig:
    return PerceiverARConfig(d_model=args.d_model, num_latents=args.latents, num_self_attention_layers=args.layers,
                             num_heads=args.heads, num_cross_attention_heads=args.heads, widening_factor=4,
                             position_encoding="rotary", tie_word_embeddings=True)


def build_peer(classes: tuple[Any, Any], args: argparse.Namespace, max_seq_len: int) -> torch.nn.Module:
    model_class, config_class = classes
    config = config_class(vocab_size=VOCAB, max_seq_len=max_seq_len, max_latents=args.latents,
                          num_channels=args.d_model, num_heads=args.heads,
                          num_self_attention_layers=args.layers, num_self_attention_rotary_layers=-1,
                          self_attention_widening_factor=4, cross_attention_widening_factor=4,
                          cross_attention_dropout=0.0, abs_pos_emb=False, output_norm=True, output_bias=False)
    return model_class(config)


def interleaved_to_halves(width: int, heads: int) -> torch.Tensor:
    """Row order that turns each head's interleaved rotary pairs ``(2i, 2i + 1)`` into halves ``(i, i + D/2)``."""
    head = width // heads
    within = torch.cat([torch.arange(0, head, 2), torch.arange(1, head, 2)])  # (D,)
    return torch.cat([h * head + within for h in range(heads)])


def peer_state_to_ours(peer: dict[str, torch.Tensor], config: PerceiverARConfig) -> dict[str, torch.Tensor]:
    """Our state dict holding the peer's weights (see the module docstring for what is permuted or zeroed)."""
    d = config.d_model
    order_cross = interleaved_to_halves(config.query_key_channels, config.num_cross_attention_heads)
    order_self = interleaved_to_halves(config.query_key_channels, config.num_heads)
    zeros = torch.zeros
    ca, cm = "cross_attention.0.module.", "cross_attention.1.module."
    ours = {
        "token_embedding.weight": peer["input_adapter.txt_embedding.weight"],
        "cross_attention.norm_q.weight": peer[ca + "q_norm.weight"],
        "cross_attention.norm_q.bias": peer[ca + "q_norm.bias"],
        "cross_attention.norm_kv.weight": peer[ca + "kv_norm.weight"],
        "cross_attention.norm_kv.bias": peer[ca + "kv_norm.bias"],
        "cross_attention.attention.q_proj.weight": peer[ca + "attention.q_proj.weight"][order_cross],
        "cross_attention.attention.q_proj.bias": zeros(config.query_key_channels),
        "cross_attention.attention.kv_proj.weight": torch.cat([peer[ca + "attention.k_proj.weight"][order_cross],
                                                               peer[ca + "attention.v_proj.weight"]]),
        "cross_attention.attention.kv_proj.bias": zeros(config.query_key_channels + d),
        "cross_attention.attention.out_proj.weight": peer[ca + "attention.o_proj.weight"],
        "cross_attention.attention.out_proj.bias": peer[ca + "attention.o_proj.bias"],
        "cross_attention.norm_mlp.weight": peer[cm + "0.weight"],
        "cross_attention.norm_mlp.bias": peer[cm + "0.bias"],
        "cross_attention.mlp.fc1.weight": peer[cm + "1.weight"],
        "cross_attention.mlp.fc1.bias": zeros(peer[cm + "1.weight"].shape[0]),
        "cross_attention.mlp.fc2.weight": peer[cm + "3.weight"],
        "cross_attention.mlp.fc2.bias": zeros(d),
        "final_norm.weight": peer["out_norm.weight"],
        "final_norm.bias": peer["out_norm.bias"],
    }
    for i in range(config.num_self_attention_layers):
        sa, sm, ours_i = f"self_attention.{i}.0.module.", f"self_attention.{i}.1.module.", f"self_attention.{i}."
        ours |= {
            ours_i + "norm.weight": peer[sa + "norm.weight"],
            ours_i + "norm.bias": peer[sa + "norm.bias"],
            ours_i + "attention.qkv_proj.weight": torch.cat([peer[sa + "attention.q_proj.weight"][order_self],
                                                             peer[sa + "attention.k_proj.weight"][order_self],
                                                             peer[sa + "attention.v_proj.weight"]]),
            ours_i + "attention.qkv_proj.bias": zeros(2 * config.query_key_channels + d),
            ours_i + "attention.out_proj.weight": peer[sa + "attention.o_proj.weight"],
            ours_i + "attention.out_proj.bias": zeros(d),
            ours_i + "norm_mlp.weight": peer[sm + "0.weight"],
            ours_i + "norm_mlp.bias": peer[sm + "0.bias"],
            ours_i + "mlp.fc1.weight": peer[sm + "1.weight"],
            ours_i + "mlp.fc1.bias": zeros(peer[sm + "1.weight"].shape[0]),
            ours_i + "mlp.fc2.weight": peer[sm + "3.weight"],
            ours_i + "mlp.fc2.bias": zeros(d),
        }
    return ours


@torch.no_grad()
def randomise(peer: torch.nn.Module, seed: int) -> None:
    """Weights that make the logit check discriminating: the peer's initialisation (standard deviation 0.02)
    leaves every attention nearly uniform, where a wrong rotary order or a misplaced projection hardly shows.
    Linear weights get standard deviation ``1 / sqrt(fan_in)`` (query and key projections three times that, for
    sharp attention), token embeddings 1; LayerNorm scales and shifts are random (the cross-attention's query and
    key/value norms kept equal, which the peer's architecture needs for identical outputs)."""
    generator = torch.Generator().manual_seed(seed)
    for name, module in peer.named_modules():
        if isinstance(module, torch.nn.Linear):
            scale = (3.0 if name.endswith(("q_proj", "k_proj")) else 1.0) / module.in_features ** 0.5
            module.weight.copy_(scale * torch.randn(module.weight.shape, generator=generator))
            if module.bias is not None:
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
        elif isinstance(module, torch.nn.Embedding):
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator))
        elif isinstance(module, torch.nn.LayerNorm):
            module.weight.copy_(1 + 0.2 * torch.randn(module.weight.shape, generator=generator))
            module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
    cross = peer.cross_attention[0].module
    cross.kv_norm.load_state_dict(cross.q_norm.state_dict())


def paired_models(classes: tuple[Any, Any], args: argparse.Namespace, max_seq_len: int
                  ) -> tuple[PerceiverAR, torch.nn.Module]:
    torch.manual_seed(args.seed)
    peer = build_peer(classes, args, max_seq_len)
    randomise(peer, args.seed)
    ours = PerceiverAR(our_config(args))
    ours.load_state_dict(peer_state_to_ours(peer.state_dict(), ours.config))
    return ours, peer


def peer_logits(peer: torch.nn.Module, input_ids: torch.Tensor, latents: int) -> torch.Tensor:
    return peer(input_ids, prefix_len=input_ids.shape[1] - latents).logits


@torch.no_grad()
def logits_difference(ours: PerceiverAR, peer: torch.nn.Module, input_ids: torch.Tensor, latents: int) -> float:
    """The largest absolute difference between our logits and the peer's (both in eval mode)."""
    ours.eval(), peer.eval()
    mine = ours(input_ids, num_latents=latents).logits
    theirs = peer_logits(peer, input_ids, latents)
    return float((mine - theirs).abs().max())


def in_float64(ours: PerceiverAR, peer: torch.nn.Module) -> tuple[PerceiverAR, torch.nn.Module]:
    """Float64 copies of both models, the peer's rotary frequencies recomputed in float64. The peer computes its
    frequencies and angles in float32 (we compute angles in float64), which at position ~1,000 is off by ~1e-4 rad;
    with sharp attention that alone moves float32 logits by ~1e-3 of their spread. In float64 with the same
    frequencies the two differ only by our rotation's float32 arithmetic (``apply_rotary`` works in float32): ~5e-5
    of the logits' spread at the benchmark's sizes, against 0.1 or more for a wrong copy."""
    ours64, peer64 = copy.deepcopy(ours).double(), copy.deepcopy(peer).double()
    encoding = peer64.input_adapter.frq_pos_encoding
    width = 2 * encoding.inv_freq.numel()
    encoding.inv_freq = 10000.0 ** (-torch.arange(0, width, 2, dtype=torch.float64) / width)
    return ours64, peer64


@torch.no_grad()
def logits_spread(ours: PerceiverAR, input_ids: torch.Tensor, latents: int) -> float:
    """The standard deviation of our logits: the scale a difference is judged against."""
    return float(ours.eval()(input_ids, num_latents=latents).logits.std())


@torch.no_grad()
def peer_generate(peer: torch.nn.Module, input_ids: torch.Tensor, new_tokens: int, latents: int) -> torch.Tensor:
    """Greedy generation with the peer's KV cache, following its ``prepare_inputs_for_generation``."""
    prefix_len = input_ids.shape[1] - min(latents, input_ids.shape[1])
    out = peer(input_ids, prefix_len=prefix_len, kv_cache=[])
    cache, generated = out.kv_cache, [out.logits[:, -1].argmax(-1)]
    for _ in range(new_tokens - 1):
        length = cache[0][0].shape[1] + 1
        if length - prefix_len > latents:
            prefix_len += 1
            cross, *selfs = cache
            cache = [cross] + [(k[:, -(latents - 1):], v[:, -(latents - 1):]) for k, v in selfs]
        out = peer(generated[-1][:, None], prefix_len=prefix_len, kv_cache=cache)
        cache = out.kv_cache
        generated.append(out.logits[:, -1].argmax(-1))
    return torch.cat([input_ids, torch.stack(generated, 1)], dim=1)


@torch.no_grad()
def peer_generate_uncached(peer: torch.nn.Module, input_ids: torch.Tensor, new_tokens: int, latents: int
                           ) -> torch.Tensor:
    """Greedy generation by the peer's full forward pass at every step (no cache): the tokens its model defines."""
    sequence = input_ids
    for _ in range(new_tokens):
        count = min(latents, sequence.shape[1])
        following = peer(sequence, prefix_len=sequence.shape[1] - count).logits[:, -1].argmax(-1)
        sequence = torch.cat([sequence, following[:, None]], dim=1)
    return sequence


def median_seconds(functions: list[Any], repeats: int) -> list[float]:
    """The median time of each of ``functions`` over ``repeats`` rounds, one call of each per round in turn, so
    that a change of load on a shared machine falls on all of them alike (one warm-up call each first)."""
    for function in functions:
        function()
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(repeats):
        for function, spent in zip(functions, times, strict=True):
            started = time.perf_counter()
            function()
            spent.append(time.perf_counter() - started)
    return [statistics.median(spent) for spent in times]


def generation_cases(args: argparse.Namespace, inputs: torch.Tensor) -> dict[str, tuple[torch.Tensor, int]]:
    """(prompt ``(1, P)``, new tokens) of each generation case: the window growing (a short prompt, generation
    stopping when the latents are full: both implementations' caches are exact there) and the window sliding (a
    long prompt: every new token moves the window)."""
    short = min(args.short_prompt, args.latents - 1)
    return {"window growing": (inputs[:1, :short], args.latents - short),
            "window sliding": (inputs[:1, :args.prompt], args.new_tokens)}


def agreement(first: torch.Tensor, second: torch.Tensor) -> str:
    differing = (first != second).nonzero()
    return "all equal" if not len(differing) else f"first differ at new token {int(differing[0])}"


def speed(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    classes = load_peer(args.peer_site)
    generator = torch.Generator().manual_seed(args.seed)
    length = max(args.context, args.prompt)
    inputs = torch.randint(ByteTokenizer.num_special_tokens, VOCAB, (args.batch, length), generator=generator)
    targets = torch.randint(ByteTokenizer.num_special_tokens, VOCAB, (args.batch, args.latents), generator=generator)
    cases = generation_cases(args, inputs)
    windows = inputs[:, :args.context]
    if isinstance(classes, str):
        print(f"peer: {classes}")
        torch.manual_seed(args.seed)
        ours, peer = PerceiverAR(our_config(args)), None
    else:
        ours, peer = paired_models(classes, args, args.context + args.prompt + args.new_tokens)
        ours64, peer64 = in_float64(ours, peer)
        exact = logits_difference(ours64, peer64, windows, args.latents)
        spread = logits_spread(ours, windows, args.latents)
        print(f"identical weights: max |logits ours - peer| over {tuple(windows.shape)} inputs (logits' standard "
              f"deviation {spread:.2f}): {exact:.1e} in float64 with the same rotary frequencies, "
              f"{logits_difference(ours, peer, windows, args.latents):.1e} in float32 (the peer's float32 angles)")
        if exact > 2e-4 * spread:  # what is left is our rotation, applied in float32 (~5e-5 of the spread here)
            print("the logits disagree: the weight copy is wrong; nothing is timed")
            return 1

    def train_step(model: torch.nn.Module, forward: Any) -> None:
        model.train()
        model.zero_grad(set_to_none=True)
        logits = forward(model)
        F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1)).backward()

    implementations: dict[str, tuple[torch.nn.Module, Any, Any]] = {
        "ours (perceiverkit)": (ours, lambda m: m(windows, num_latents=args.latents).logits,
                                lambda ids, n: ours.generate(ids, n, num_latents=args.latents))}
    if peer is not None:
        implementations["peer (perceiver-io 0.11)"] = (peer, lambda m: peer_logits(m, windows, args.latents),
                                                       lambda ids, n: peer_generate(peer, ids, n, args.latents))
    names = list(implementations)
    steps = median_seconds([lambda model=model, forward=forward: train_step(model, forward)
                            for model, forward, _ in implementations.values()], args.repeats)
    for model, _, _ in implementations.values():
        model.eval()
    rates = [[n / seconds for seconds in median_seconds(
        [lambda ids=ids, n=n, generate=generate: generate(ids, n) for _, _, generate in implementations.values()],
        args.repeats)] for ids, n in cases.values()]  # [case][implementation]
    results = {name: [1000 * steps[i], *(case[i] for case in rates)] for i, name in enumerate(names)}
    print(f"\nCPU: {cpu_name()}, {args.threads} thread(s), torch {torch.__version__}; d_model {args.d_model}, "
          f"{args.latents} latents, {args.layers} self-attention layers, {args.heads} heads; forward+backward on "
          f"batch {args.batch} x {args.context} bytes; greedy generation, batch 1: "
          + "; ".join(f"{case}: {n} bytes after a {ids.shape[1]}-byte prompt" for case, (ids, n) in cases.items())
          + f"; median of {args.repeats} rounds, the implementations taking turns\n")
    print("| implementation | forward+backward (ms/step) | "
          + " | ".join(f"generation, {case} (tokens/s)" for case in cases) + " |")
    print("|---|---:|" + "---:|" * len(cases))
    for name, (step, *rates) in results.items():
        print(f"| {name} | {step:.1f} | " + " | ".join(f"{rate:.1f}" for rate in rates) + " |")
    if peer is not None:
        print("\ngreedy tokens compared in float64 (the same rotary frequencies), so that only the caches differ:")
        for case, (ids, n) in cases.items():
            mine = ours64.generate(ids, n, num_latents=args.latents)[0, ids.shape[1]:]
            theirs = peer_generate(peer64, ids, n, args.latents)[0, ids.shape[1]:]
            uncached = peer_generate_uncached(peer64, ids, n, args.latents)[0, ids.shape[1]:]
            print(f"greedy tokens, {case}: ours against the peer's cached generation: {agreement(mine, theirs)}; "
                  f"ours against the peer without its cache: {agreement(mine, uncached)} (of {n})")
    return 0


# --- memory against context length ------------------------------------------------------------------------------

def peak_resident_kib() -> int:
    """This process's peak resident memory in KiB: ``VmHWM`` from ``/proc/self/status`` where there is one (it
    starts afresh at ``exec``, while ``ru_maxrss`` keeps the parent's size at ``fork``, which would hide a child's
    rise under a large parent), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_child(args: argparse.Namespace) -> int:
    """One measurement in this fresh process: the rise of the process's peak resident memory over one forward
    (+ backward) pass at ``--context``."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = PerceiverAR(our_config(args))
    tokens = ByteTokenizer.num_special_tokens
    warm = torch.randint(tokens, VOCAB, (args.batch, args.latents))
    model(warm).logits.sum().backward()  # allocator and kernels warmed at the smallest size
    model.zero_grad(set_to_none=False)  # gradients stay allocated: the rise below is activations only
    inputs = torch.randint(tokens, VOCAB, (args.batch, args.context))
    before = peak_resident_kib()
    started = time.perf_counter()
    logits = model(inputs).logits
    if args.backward:
        logits.float().logsumexp(-1).mean().backward()
    seconds = time.perf_counter() - started
    after = peak_resident_kib()
    print(json.dumps({"context": args.context, "peak_rise_mib": (after - before) / 1024, "seconds": seconds}))
    return 0


def memory(args: argparse.Namespace) -> int:
    rows = []
    for context in args.contexts:
        command = [sys.executable, __file__, "memory-child", "--context", str(context), "--latents",
                   str(args.latents), "--d-model", str(args.d_model), "--layers", str(args.layers), "--heads",
                   str(args.heads), "--batch", str(args.batch), "--threads", str(args.threads)]
        command += [] if args.backward else ["--no-backward"]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"context {context}: the measuring process failed: {done.stderr.strip().splitlines()[-1:]}")
            return 1
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"context {context}: +{rows[-1]['peak_rise_mib']:.1f} MiB, {rows[-1]['seconds']:.2f} s", flush=True)
    contexts = torch.tensor([row["context"] for row in rows], dtype=torch.float64)
    mib = torch.tensor([row["peak_rise_mib"] for row in rows], dtype=torch.float64)
    # Least squares of peak = a + b * context: a linear model should leave small residuals; a quadratic term
    # (the cost of full self-attention over the context) would not fit.
    design = torch.stack([torch.ones_like(contexts), contexts], 1)
    intercept, slope = torch.linalg.lstsq(design, mib[:, None]).solution.flatten().tolist()
    pass_name = "forward+backward" if args.backward else "forward"
    print(f"\nCPU: {cpu_name()}; d_model {args.d_model}, {args.latents} latents, {args.layers} self-attention "
          f"layers, batch {args.batch}, {pass_name}; peak resident memory rise (VmHWM) per fresh process\n")
    print("| context (bytes) | peak rise (MiB) | linear fit (MiB) | KiB per context byte | time (s) |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        fit = intercept + slope * row["context"]
        print(f"| {row['context']:,} | {row['peak_rise_mib']:.1f} | {fit:.1f} | "
              f"{1024 * row['peak_rise_mib'] / row['context']:.2f} | {row['seconds']:.2f} |")
    print(f"\nfit: {intercept:.1f} MiB + {1024 * slope:.3f} KiB x context")
    if args.figure:
        plot_memory(rows, intercept, slope, args, Path(args.figure), pass_name)
    return 0


def plot_memory(rows: list[dict[str, float]], intercept: float, slope: float, args: argparse.Namespace,
                figure: Path, pass_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    contexts = [row["context"] for row in rows]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(contexts, [row["peak_rise_mib"] for row in rows], "o", label="measured peak rise")
    ax.plot([0, max(contexts)], [intercept, intercept + slope * max(contexts)], "--",
            label=f"linear fit: {intercept:.0f} MiB + {1024 * slope:.2f} KiB/byte")
    ax.set_xlabel("context (bytes)")
    ax.set_ylabel("peak memory rise (MiB)")
    ax.set_title(f"Perceiver AR {pass_name}, {args.latents} latents fixed, d_model {args.d_model}, "
                 f"batch {args.batch} (CPU)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=120)
    print(f"wrote {figure}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("speed", "memory", "memory-child"))
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--latents", type=int, default=128)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=None, help="default 4 (speed) or 1 (memory)")
    parser.add_argument("--context", type=int, default=1024, help="bytes per training window (speed)")
    parser.add_argument("--prompt", type=int, default=512, help="prompt bytes, window sliding (speed)")
    parser.add_argument("--new-tokens", type=int, default=128, help="bytes generated, window sliding (speed)")
    parser.add_argument("--short-prompt", type=int, default=16,
                        help="prompt bytes, window growing: generation fills the latents (speed)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peer-site", default=None, help="site-packages of the environment holding perceiver-io")
    parser.add_argument("--contexts", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    parser.add_argument("--no-backward", dest="backward", action="store_false", help="memory of a forward only")
    parser.add_argument("--figure", default=None, help="PNG of memory against context (memory)")
    args = parser.parse_args(argv)
    if args.batch is None:
        args.batch = 4 if args.mode == "speed" else 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return {"speed": speed, "memory": memory, "memory-child": memory_child}[args.mode](args)


if __name__ == "__main__":
    raise SystemExit(main())
