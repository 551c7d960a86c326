"""Rotary position embeddings against their closed form: a rotation of each channel pair by ``m·θ_i``."""

from __future__ import annotations

import math

import pytest
import torch

from perceiverkit.layers.position import apply_rotary, rotary_angles


def rotate_as_complex(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """The oracle: pair ``(x_i, x_{i+D/2})`` is the complex number ``x_i + j·x_{i+D/2}``, multiplied by
    ``exp(j·m·θ_i)`` with ``θ_i = base^(-2i/D)``."""
    half = x.shape[-1] // 2
    theta = torch.tensor([base ** (-2 * i / x.shape[-1]) for i in range(half)], dtype=torch.float64)
    z = torch.complex(x[..., :half].double(), x[..., half:].double())
    turned = z * torch.polar(torch.ones_like(theta), positions.double()[:, None] * theta)
    return torch.cat([turned.real, turned.imag], dim=-1).float()


def test_matches_the_complex_rotation_and_keeps_norms() -> None:
    x = torch.randn(2, 3, 7, 16)  # (B, H, N, D)
    positions = torch.tensor([0, 1, 2, 5, 100, 4095, 30000])
    cos, sin = rotary_angles(positions, 16)
    rotated = apply_rotary(x, cos, sin)
    torch.testing.assert_close(rotated, rotate_as_complex(x, positions), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rotated[..., 0, :], x[..., 0, :])  # position 0: no rotation


def test_dot_products_depend_only_on_the_offset() -> None:
    q, k = torch.randn(1, 1, 1, 32), torch.randn(1, 1, 1, 32)

    def score(m: int, n: int) -> float:
        qm = apply_rotary(q, *rotary_angles(torch.tensor([m]), 32))
        kn = apply_rotary(k, *rotary_angles(torch.tensor([n]), 32))
        return float((qm * kn).sum())

    for offset in (0, 1, 7, 300):
        scores = [score(start + offset, start) for start in (0, 13, 1000, 9000)]
        assert max(scores) - min(scores) < 1e-4 * max(1.0, abs(scores[0]))
    assert not math.isclose(score(5, 0), score(0, 0), rel_tol=1e-3)  # the offset does matter


def test_per_batch_positions_and_odd_width() -> None:
    x = torch.randn(2, 4, 3, 8)
    positions = torch.tensor([[0, 3, 9], [1, 2, 50]])  # (B, N)
    rotated = apply_rotary(x, *rotary_angles(positions, 8))
    for b in range(2):
        torch.testing.assert_close(rotated[b], rotate_as_complex(x[b], positions[b]), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="even head width"):
        rotary_angles(torch.arange(3), 7)
