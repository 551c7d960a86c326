"""Plain helpers shared by the tests (fixtures live in conftest.py). Transformers is the oracle: random-weight
Transformers models stand in for the published checkpoints (no network here)."""

from __future__ import annotations

from typing import Any

import torch
import transformers


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """max |ours - reference| / max |reference|: the tolerance measure used throughout."""
    assert ours.shape == reference.shape, f"shape {tuple(ours.shape)} != reference {tuple(reference.shape)}"
    return float((ours.double() - reference.double()).abs().max() / reference.double().abs().max())


def small_hf_config(**overrides: Any) -> transformers.PerceiverConfig:
    """A small, deliberately non-default Transformers PerceiverConfig."""
    base: dict[str, Any] = dict(
        num_latents=8, d_latents=64, d_model=32, num_self_attends_per_block=2, num_self_attention_heads=4,
        num_cross_attention_heads=2, max_position_embeddings=40, num_labels=3,
    )
    base.update(overrides)
    return transformers.PerceiverConfig(**base)


def randomize_(model: torch.nn.Module, std: float = 0.1, seed: int = 0) -> torch.nn.Module:
    """Give every parameter (norm scales and biases included) random values, so that a wrong mapping of any
    tensor changes the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * std)
        for name, b in model.named_buffers():  # batch-norm statistics
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=gen) * std)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=gen) + 0.5)
    return model


def shipped_card_metrics(name: str) -> list[dict[str, Any]]:
    """The ``metrics`` a shipped model's ``card.yaml`` claims: tests hold the model to these, never to copies."""
    import yaml

    from perceiverkit.resources import packaged_model

    folder = packaged_model(name)
    assert folder is not None, f"no shipped model {name}"
    metrics = yaml.safe_load((folder / "card.yaml").read_text())["metrics"]
    assert isinstance(metrics, list) and metrics
    return metrics
