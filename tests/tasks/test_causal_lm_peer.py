"""Our Perceiver AR against krasserm's ``perceiver-io`` 0.11 (the peer, an independent implementation) on identical
weights: the same logits, and the same greedy tokens while the latent window grows.

The peer is not a dependency: it runs only where it was installed into a throwaway environment (see
``benchmarks/perceiver_ar_speed.py``) whose ``site-packages`` is named by ``PERCEIVER_IO_SITE``; elsewhere these
tests skip and say so. The weight copy and the peer's generation loop are the benchmark's own, so the timing table
it prints is for the models checked here.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "perceiver_ar_speed.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("perceiver_ar_speed", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def script_and_peer(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, Any]]:
    # The peer's modules (and the fairscale stand-in) leave sys.modules and sys.path with the test.
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    try:
        script = load_script()
        classes = script.load_peer(os.environ.get("PERCEIVER_IO_SITE"))
        if isinstance(classes, str):
            pytest.skip(f"{classes} (set PERCEIVER_IO_SITE to the site-packages holding perceiver-io 0.11)")
        yield script, classes
    finally:
        for name in set(sys.modules) - before:
            del sys.modules[name]


def sizes(**overrides: int) -> argparse.Namespace:
    values = {"d_model": 64, "latents": 16, "layers": 2, "heads": 4, "seed": 0} | overrides
    return argparse.Namespace(**values)


@pytest.mark.parametrize(("overrides", "length"), [
    ({}, 100),  # a prefix of 84 positions before 16 latents
    ({"layers": 3, "heads": 2, "seed": 1}, 16),  # no prefix: a causal Transformer over the latents
    ({"d_model": 96, "latents": 40, "heads": 3}, 257),
])
def test_identical_weights_give_the_peers_logits(script_and_peer: tuple[ModuleType, Any],
                                                  overrides: dict[str, int], length: int) -> None:
    script, classes = script_and_peer
    args = sizes(**overrides)
    ours, peer = script.paired_models(classes, args, max_seq_len=512)
    ids = torch.randint(6, 262, (2, length), generator=torch.Generator().manual_seed(args.seed))
    spread = script.logits_spread(ours, ids, args.latents)
    # Not a vacuous agreement: the logits vary over positions and vocabulary by far more than they differ.
    assert spread > 1.0
    # float32: the peer computes its rotary angles in float32, we in float64. In float64 with the same frequencies
    # what is left is our rotation itself, applied in float32 (apply_rotary's working precision): ~2e-6 here, where
    # a wrong copy moves the logits by a tenth of their spread or more.
    assert script.logits_difference(ours, peer, ids, args.latents) < 1e-3 * spread
    assert script.logits_difference(*script.in_float64(ours, peer), ids, args.latents) < 2e-5 * spread


def test_greedy_generation_matches_the_peers_while_the_window_grows(script_and_peer: tuple[ModuleType, Any]
                                                                  ) -> None:
    script, classes = script_and_peer
    args = sizes(latents=48)
    ours, peer = script.in_float64(*script.paired_models(classes, args, max_seq_len=512))
    ours.eval(), peer.eval()
    prompt = torch.randint(6, 262, (1, 8), generator=torch.Generator().manual_seed(3))
    new = args.latents - prompt.shape[1]  # the last token generated before the window would slide
    assert torch.equal(ours.generate(prompt, new, num_latents=args.latents),
                       script.peer_generate(peer, prompt, new, args.latents))


def test_greedy_generation_with_a_sliding_window_matches_the_peers_uncached_forward(
        script_and_peer: tuple[ModuleType, Any]) -> None:
    # Once the window slides, the peer's cache keeps stale keys and values in the deeper self-attention layers (an
    # approximation); its full forward pass at each step is the model both implement. Ours caches exactly.
    script, classes = script_and_peer
    args = sizes(latents=12)
    ours, peer = script.in_float64(*script.paired_models(classes, args, max_seq_len=512))
    ours.eval(), peer.eval()
    prompt = torch.randint(6, 262, (1, 30), generator=torch.Generator().manual_seed(4))
    assert torch.equal(ours.generate(prompt, 20, num_latents=args.latents),
                       script.peer_generate_uncached(peer, prompt, 20, args.latents))
