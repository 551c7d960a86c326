"""GridPositions keeps the positions it computed without autograd, and only while nothing they depend on changed;
Preprocessed concatenates a factored view only when read."""

from __future__ import annotations

import torch

from perceiverkit import PositionEncodingConfig
from perceiverkit.accel import FactoredInputs
from perceiverkit.processors.base import Preprocessed
from perceiverkit.processors.positions import GridPositions


def _learned() -> GridPositions:
    torch.manual_seed(0)
    return GridPositions(PositionEncodingConfig(kind="trainable", num_channels=6, project_pos_dim=5), 3, (4, 6))


def _fresh(module: GridPositions, features: torch.Tensor) -> torch.Tensor:
    table = module.encoding.embeddings.unsqueeze(0)
    return module.projection(table.to(features.dtype)).expand(features.shape[0], -1, -1)


def test_positions_are_kept_without_autograd_and_recomputed_after_an_update():
    module, features = _learned(), torch.randn(2, 4, 6, 3)
    with torch.no_grad():
        first = module(features).view.positions
        again = module(features).view.positions
        assert again.data_ptr() == first.data_ptr()  # reused, not recomputed
        torch.testing.assert_close(first.expand(2, -1, -1), _fresh(module, features), rtol=0, atol=0)
        module.projection.weight.add_(1.0)  # what an optimiser step does
        updated = module(features).view.positions
        torch.testing.assert_close(updated.expand(2, -1, -1), _fresh(module, features), rtol=0, atol=0)
        assert not torch.allclose(updated, first)
        module.load_state_dict({k: torch.zeros_like(v) for k, v in module.state_dict().items()})
        assert not module(features).view.positions.any()
        double = module.double()(features.double()).view.positions
        assert double.dtype == torch.float64
    module.clear_cache()
    assert module._cache is None


def test_positions_are_not_kept_with_autograd_or_across_autocast():
    module, features = _learned(), torch.randn(2, 4, 6, 3)
    with_grad = module(features).view.positions
    assert with_grad.requires_grad and module._cache is None
    with torch.no_grad():
        plain = module(features).view.positions
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = module(features).view.positions
    assert plain.dtype == torch.float32 and autocast.dtype == torch.bfloat16


def test_fourier_positions_are_kept_per_grid():
    module = GridPositions(PositionEncodingConfig(kind="fourier", num_bands=3, max_resolution=(8, 8)), 2)
    with torch.no_grad():
        small = module(torch.randn(1, 4, 4, 2)).view.positions
        large = module(torch.randn(1, 8, 8, 2)).view.positions
    assert small.shape[1] == 16 and large.shape[1] == 64


def test_preprocessed_concatenates_a_factored_view_only_when_read():
    raw, positions = torch.randn(2, 5, 3), torch.randn(1, 5, 4)
    pre = Preprocessed.from_view(FactoredInputs(raw, positions), (5,))
    assert pre._inputs is None and pre.batch_size == 2 and pre.encoder_inputs.shape == (2, 5, 7)
    torch.testing.assert_close(pre.inputs, torch.cat([raw, positions.expand(2, -1, -1)], dim=-1), rtol=0, atol=0)
    assert pre.inputs is pre.inputs  # formed once
