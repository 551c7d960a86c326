"""Point-cloud shapes: points lie on the documented surfaces, uniformly; the dataset is deterministic and balanced."""

from __future__ import annotations

import math

import pytest
import torch

from perceiverkit.datasets.point_clouds import (
    SHAPES,
    TORUS_MAJOR,
    TORUS_MINOR,
    PointClouds,
    random_rotation,
    sample_shape,
)

N = 4000
TOL = 1e-5


def _sample(name: str, seed: int = 0) -> torch.Tensor:
    points = sample_shape(name, N, torch.Generator().manual_seed(seed))
    assert points.shape == (N, 3) and points.dtype == torch.float32
    return points.double()


def test_at_least_six_distinct_shapes():
    assert len(SHAPES) >= 6 and len(set(SHAPES)) == len(SHAPES)


@pytest.mark.parametrize("name", SHAPES)
def test_samples_fit_the_unit_cube_and_are_deterministic(name: str):
    points = _sample(name)
    assert points.abs().max() <= 1 + TOL
    assert torch.equal(points, _sample(name)) and not torch.equal(points, _sample(name, seed=1))


def test_sphere_points_have_unit_norm_and_uniform_heights():
    points = _sample("sphere")
    torch.testing.assert_close(points.norm(dim=-1), torch.ones(N, dtype=torch.float64))
    # Archimedes: on a uniform sphere each coordinate is uniform on [-1, 1].
    for axis in range(3):
        counts = torch.histc(points[:, axis], bins=4, min=-1, max=1)
        assert (counts / N - 0.25).abs().max() < 0.03


def test_cube_points_lie_on_faces_with_equal_shares():
    points = _sample("cube")
    assert (points.abs().max(dim=-1).values > 1 - TOL).all()
    axis = points.abs().argmax(dim=-1)
    face = axis * 2 + (points[torch.arange(N), axis] > 0)  # which of the 6 faces
    shares = torch.bincount(face, minlength=6).double() / N
    assert (shares - 1 / 6).abs().max() < 0.025


def test_cylinder_points_lie_on_the_side_or_caps_by_area():
    points = _sample("cylinder")
    radius = points[:, :2].norm(dim=-1)
    on_cap = (points[:, 2].abs() - 1).abs() < TOL
    on_side = (radius - 1).abs() < TOL
    assert (on_cap | on_side).all() and (radius[on_cap] <= 1 + TOL).all()
    assert on_cap.double().mean() == pytest.approx(1 / 3, abs=0.03)  # caps: 2 pi of 6 pi total area


def test_cone_points_lie_on_the_mantle_or_base():
    points = _sample("cone")
    radius, z = points[:, :2].norm(dim=-1), points[:, 2]
    on_base = (z + 1).abs() < TOL
    on_mantle = (radius - (1 - z) / 2).abs() < TOL
    assert (on_base | on_mantle).all() and (radius[on_base] <= 1 + TOL).all()
    assert on_base.double().mean() == pytest.approx(1 / (1 + math.sqrt(5)), abs=0.03)


def test_torus_points_satisfy_the_implicit_equation_with_area_weighting():
    points = _sample("torus")
    rho = points[:, :2].norm(dim=-1)
    torch.testing.assert_close((rho - TORUS_MAJOR) ** 2 + points[:, 2] ** 2,
                               torch.full((N,), TORUS_MINOR**2, dtype=torch.float64), rtol=0, atol=TOL)
    # The outer half (rho > R) has more area: (pi R + 2 r) / (2 pi R) of the total.
    outer = (rho > TORUS_MAJOR).double().mean()
    assert outer == pytest.approx(0.5 + TORUS_MINOR / (math.pi * TORUS_MAJOR), abs=0.03)


def test_polyhedra_points_lie_on_their_faces():
    pyramid = _sample("pyramid")
    side = (pyramid[:, :2].abs().max(dim=-1).values - (1 - pyramid[:, 2]) / 2).abs() < TOL
    base = (pyramid[:, 2] + 1).abs() < TOL
    assert (side | base).all()
    assert base.double().mean() == pytest.approx(4 / (4 + 4 * math.sqrt(5)), abs=0.03)  # base / total area

    octahedron = _sample("octahedron")
    torch.testing.assert_close(octahedron.abs().sum(dim=-1), torch.ones(N, dtype=torch.float64))

    # Regular tetrahedron of circumradius 1: inradius 1/3, faces opposite the vertices (±1, ±1, ±1)/sqrt(3).
    vertices = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64) / math.sqrt(3)
    distances = (-_sample("tetrahedron") @ vertices.T).max(dim=-1).values
    torch.testing.assert_close(distances, torch.full((N,), 1 / 3, dtype=torch.float64), rtol=0, atol=TOL)


def test_sample_shape_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown shape 'blob'; expected one of"):
        sample_shape("blob", 10)
    with pytest.raises(ValueError, match="num_points"):
        sample_shape("sphere", 0)


def test_random_rotations_are_proper_and_spread_out():
    gen = torch.Generator().manual_seed(0)
    rotations = torch.stack([random_rotation(gen) for _ in range(2000)])
    eye = torch.eye(3, dtype=torch.float64).expand(2000, 3, 3)
    torch.testing.assert_close(rotations @ rotations.transpose(1, 2), eye)
    torch.testing.assert_close(torch.linalg.det(rotations), torch.ones(2000, dtype=torch.float64))
    assert rotations.mean(dim=0).abs().max() < 0.05  # the Haar mean of SO(3) is the zero matrix


def test_dataset_items_are_deterministic_and_split_specific():
    train = PointClouds("train", num_points=128, length=24, seed=0)
    points, label = train[5]
    assert points.shape == (128, 3) and points.dtype == torch.float32 and isinstance(label, int)
    again, label_again = PointClouds("train", num_points=128, length=24, seed=0)[5]
    assert torch.equal(points, again) and label == label_again
    assert not torch.equal(points, PointClouds("train", num_points=128, length=24, seed=1)[5][0])
    test = PointClouds("test", num_points=128, length=24, seed=0)
    val = PointClouds("val", num_points=128, length=24, seed=0)
    assert all(not torch.equal(train[i][0], test[i][0]) for i in range(len(test)))
    assert all(not torch.equal(val[i][0], other[i][0]) for other in (train, test) for i in range(len(val)))
    with pytest.raises(IndexError):
        train[24]
    with pytest.raises(ValueError, match="split must be one of"):
        PointClouds("validation")


def test_dataset_is_class_balanced():
    data = PointClouds(num_points=8, length=10 * len(SHAPES))
    labels = torch.tensor([data[i][1] for i in range(len(data))])
    assert torch.equal(torch.bincount(labels, minlength=len(SHAPES)), torch.full((len(SHAPES),), 10))
    assert data.num_classes == len(SHAPES)


def test_dataset_transform_is_a_similarity_with_bounded_scale_and_shift():
    sphere = SHAPES.index("sphere")
    data = PointClouds(num_points=256, length=len(SHAPES) * 5, noise=0.0, translation=0.2)
    for index in range(sphere, len(data), len(SHAPES)):
        points, label = data[index]
        assert label == sphere
        # A sphere sample stays a sphere: rotation and isotropic scale keep all radii equal about the centre.
        centre = torch.linalg.lstsq(
            torch.cat([2 * points.double(), torch.ones(256, 1, dtype=torch.float64)], dim=1),
            (points.double() ** 2).sum(dim=1, keepdim=True),
        ).solution[:3, 0]
        radii = (points.double() - centre).norm(dim=-1)
        assert radii.std() < 1e-4 and 0.7 - 1e-4 <= radii.mean() <= 1.3 + 1e-4
        assert centre.abs().max() <= 0.2 + 1e-4
    noisy, _ = PointClouds(num_points=256, length=len(SHAPES), noise=0.05)[sphere]
    assert not torch.equal(noisy, data[sphere][0])
