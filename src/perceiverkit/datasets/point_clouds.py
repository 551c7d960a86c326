"""Synthetic point-cloud classification: points sampled uniformly on the surfaces of simple 3-D shapes.

Canonical shapes are centred at the origin and fit the cube [-1, 1]^3: sphere of radius 1; cube of side 2;
cylinder and cone of radius 1 along z in [-1, 1] (cone apex at z = +1); torus in the xy-plane with major radius
:data:`TORUS_MAJOR` and minor radius :data:`TORUS_MINOR`; square pyramid with base [-1, 1]^2 at z = -1 and apex at
z = +1; octahedron |x| + |y| + |z| = 1; regular tetrahedron with circumradius 1.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["SHAPES", "TORUS_MAJOR", "TORUS_MINOR", "PointClouds", "random_rotation", "sample_shape"]

SHAPES: tuple[str, ...] = ("sphere", "cube", "cylinder", "cone", "torus", "pyramid", "octahedron", "tetrahedron")
TORUS_MAJOR = 0.7
TORUS_MINOR = 0.3

_F = torch.float64  # sample in double, hand out float32


def _mesh(vertices: list[list[float]], faces: list[tuple[int, ...]]) -> torch.Tensor:
    """(num_triangles, 3, 3) triangle corners; polygon faces are fanned into triangles."""
    v = torch.tensor(vertices, dtype=_F)
    return torch.stack([v[[face[0], face[k], face[k + 1]]] for face in faces for k in range(1, len(face) - 1)])


_TETRA = [[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]
_MESHES: dict[str, torch.Tensor] = {
    "cube": _mesh(
        [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)],  # index = 4*(x>0) + 2*(y>0) + (z>0)
        [(0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5)],
    ),
    "pyramid": _mesh(
        [[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1], [0, 0, 1]],
        [(0, 1, 2, 3), (0, 1, 4), (1, 2, 4), (2, 3, 4), (3, 0, 4)],
    ),
    "octahedron": _mesh(
        [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]],
        [(a, b, c) for a in (0, 1) for b in (2, 3) for c in (4, 5)],
    ),
    "tetrahedron": _mesh([[c / math.sqrt(3) for c in v] for v in _TETRA], [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)]),
}


def _sample_mesh(triangles: torch.Tensor, n: int, gen: torch.Generator | None) -> torch.Tensor:
    """Uniform samples on a triangle mesh: triangles picked by area, then uniform barycentric coordinates."""
    a, b, c = triangles.unbind(1)
    areas = torch.linalg.vector_norm(torch.linalg.cross(b - a, c - a), dim=-1)
    idx = torch.multinomial(areas, n, replacement=True, generator=gen)
    r1, r2 = torch.rand(2, n, 1, generator=gen, dtype=_F)
    s = r1.sqrt()  # the square root makes the density uniform over the triangle rather than bunched at a
    return (1 - s) * a[idx] + s * (1 - r2) * b[idx] + s * r2 * c[idx]


def _disc(n: int, z: float, gen: torch.Generator | None) -> torch.Tensor:
    """Uniform samples on the unit disc at height z."""
    r = torch.rand(n, generator=gen, dtype=_F).sqrt()
    t = torch.rand(n, generator=gen, dtype=_F) * (2 * math.pi)
    return torch.stack([r * t.cos(), r * t.sin(), torch.full_like(r, z)], dim=-1)


def _choose(weights: list[float], n: int, gen: torch.Generator | None) -> torch.Tensor:
    """Which surface part each point belongs to, with probability proportional to the part's area."""
    return torch.multinomial(torch.tensor(weights, dtype=_F), n, replacement=True, generator=gen)


def sample_shape(name: str, num_points: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``num_points`` points (N, 3) float32 sampled uniformly (by area) on the surface of a canonical shape.

    ``name`` is one of :data:`SHAPES`; the canonical poses and sizes are described in the module docstring.
    """
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; expected one of {SHAPES}")
    if not (isinstance(num_points, int) and num_points >= 1):
        raise ValueError(f"num_points must be a positive integer, got {num_points!r}")
    n, gen = num_points, generator
    if name in _MESHES:
        points = _sample_mesh(_MESHES[name], n, gen)
    elif name == "sphere":
        g = torch.randn(n, 3, generator=gen, dtype=_F)  # isotropic Gaussian directions are uniform on S^2
        points = g / torch.linalg.vector_norm(g, dim=-1, keepdim=True).clamp_min(1e-12)
    elif name == "cylinder":
        part = _choose([4 * math.pi, math.pi, math.pi], n, gen)  # lateral 2*pi*r*h, two caps pi*r^2
        t = torch.rand(n, generator=gen, dtype=_F) * (2 * math.pi)
        z = torch.rand(n, generator=gen, dtype=_F) * 2 - 1
        points = torch.stack([t.cos(), t.sin(), z], dim=-1)
        points = torch.where((part == 1)[:, None], _disc(n, 1.0, gen), points)
        points = torch.where((part == 2)[:, None], _disc(n, -1.0, gen), points)
    elif name == "cone":
        part = _choose([math.pi * math.sqrt(5), math.pi], n, gen)  # lateral pi*r*slant (slant sqrt(1+2^2)), base
        # Lateral area within distance q (as a fraction of the slant) from the apex grows as q^2: q = sqrt(U).
        q = torch.rand(n, generator=gen, dtype=_F).sqrt()
        t = torch.rand(n, generator=gen, dtype=_F) * (2 * math.pi)
        points = torch.stack([q * t.cos(), q * t.sin(), 1 - 2 * q], dim=-1)
        points = torch.where((part == 1)[:, None], _disc(n, -1.0, gen), points)
    else:  # torus
        big, small = TORUS_MAJOR, TORUS_MINOR
        # The area element is proportional to (R + r cos(theta)): rejection-sample theta against it.
        thetas = torch.empty(0, dtype=_F)
        while thetas.numel() < n:
            theta = torch.rand(2 * n, generator=gen, dtype=_F) * (2 * math.pi)
            keep = torch.rand(2 * n, generator=gen, dtype=_F) * (big + small) < big + small * theta.cos()
            thetas = torch.cat([thetas, theta[keep]])
        theta = thetas[:n]
        phi = torch.rand(n, generator=gen, dtype=_F) * (2 * math.pi)
        rho = big + small * theta.cos()
        points = torch.stack([rho * phi.cos(), rho * phi.sin(), small * theta.sin()], dim=-1)
    return points.to(torch.float32)


def random_rotation(generator: torch.Generator | None = None) -> torch.Tensor:
    """A (3, 3) float64 rotation drawn uniformly (Haar measure) from SO(3).

    This is QR of a Gaussian matrix with R's diagonal made positive (Haar on O(3)) followed by the determinant
    fix, written out: Gram–Schmidt on the first two Gaussian columns gives Q's first two columns, and taking the
    third as their cross product picks the det = +1 sign. Explicit 3-D algebra is far cheaper than a LAPACK QR.
    """
    g = torch.randn(3, 3, generator=generator, dtype=_F)
    q1 = g[:, 0] / torch.linalg.vector_norm(g[:, 0])
    q2 = g[:, 1] - (q1 @ g[:, 1]) * q1
    q2 = q2 / torch.linalg.vector_norm(q2)
    return torch.stack([q1, q2, torch.linalg.cross(q1, q2)], dim=1)


def _item_generator(*key: int) -> torch.Generator:
    """A generator seeded from a hash of ``key``, so that nearby keys give unrelated streams."""
    state = np.random.SeedSequence([int(k) for k in key]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)


_SPLITS = {"train": 0, "test": 1, "val": 2}


class PointClouds(Dataset[tuple[torch.Tensor, int]]):
    """Shape classification: item ``i`` is ``(points (N, 3) float32, label int)``, label = index into ``shapes``.

    Labels cycle through the classes (item i has label i mod num_classes), so any run of consecutive items is
    balanced. Each cloud is a canonical surface sample, rotated uniformly in SO(3), scaled isotropically by a
    factor in [0.7, 1.3], translated by up to ``translation`` per axis, perturbed by Gaussian noise of std
    ``noise``, and shuffled. Items depend only on ``(seed, split, index)``; the three splits draw from different
    random streams.
    """

    def __init__(
        self,
        split: str = "train",
        num_points: int = 512,
        length: int = 1024,
        seed: int = 0,
        noise: float = 0.02,
        translation: float = 0.2,
        shapes: tuple[str, ...] = SHAPES,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {tuple(_SPLITS)}, got {split!r}")
        if not (isinstance(num_points, int) and num_points >= 1):
            raise ValueError(f"num_points must be a positive integer, got {num_points!r}")
        if not (isinstance(length, int) and length >= 0):
            raise ValueError(f"length must be an integer >= 0, got {length!r}")
        if not (math.isfinite(noise) and noise >= 0):
            raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
        if not (math.isfinite(translation) and translation >= 0):
            raise ValueError(f"translation must be a finite number >= 0, got {translation!r}")
        unknown = [s for s in shapes if s not in SHAPES]
        if not shapes or unknown:
            raise ValueError(f"shapes must be a non-empty subset of {SHAPES}, got {tuple(shapes)!r}")
        self.split = split
        self.num_points = num_points
        self.length = length
        self.seed = int(seed)
        self.noise = float(noise)
        self.translation = float(translation)
        self.shapes = tuple(shapes)

    @property
    def num_classes(self) -> int:
        return len(self.shapes)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        gen = _item_generator(self.seed, _SPLITS[self.split], index)
        label = index % self.num_classes
        points = sample_shape(self.shapes[label], self.num_points, gen).double()
        rotation = random_rotation(gen)
        scale = 0.7 + 0.6 * float(torch.rand((), generator=gen, dtype=_F))
        shift = (2 * torch.rand(3, generator=gen, dtype=_F) - 1) * self.translation
        points = points @ rotation.T * scale + shift
        points = points + self.noise * torch.randn(points.shape, generator=gen, dtype=_F)
        points = points[torch.randperm(self.num_points, generator=gen)]
        return points.to(torch.float32), label
