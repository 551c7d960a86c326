"""Position encodings against Transformers' functions and closed-form values."""

from __future__ import annotations

import math

import pytest
import torch
import transformers.models.perceiver.modeling_perceiver as hf_perceiver

from perceiverkit.layers import FourierPositionEncoding, TrainablePositionEncoding, fourier_features, linear_positions


@pytest.mark.parametrize("index_dims", [(7,), (4, 5), (2, 3, 4)])
def test_linear_positions_match_transformers(index_dims):
    torch.testing.assert_close(linear_positions(index_dims), hf_perceiver.build_linear_positions(index_dims))


@pytest.mark.parametrize("concat_pos", [True, False])
@pytest.mark.parametrize("sine_only", [True, False])
@pytest.mark.parametrize("index_dims,max_resolution", [((6,), (6,)), ((4, 5), (8, 10)), ((2, 3, 4), (2, 3, 4))])
def test_fourier_features_match_transformers(index_dims, max_resolution, concat_pos, sine_only):
    encoding = FourierPositionEncoding(num_bands=5, max_resolution=max_resolution, concat_pos=concat_pos,
                                       sine_only=sine_only)
    reference = hf_perceiver.PerceiverFourierPositionEncoding(5, max_resolution, concat_pos, sine_only)
    expected = reference(list(index_dims), batch_size=2, device=torch.device("cpu"), dtype=torch.float32)
    if expected.dim() == 2:  # Transformers drops the batch axis when concat_pos=False
        expected = expected.expand(2, -1, -1)
    got = encoding(2, index_dims)
    assert encoding.num_channels == reference.output_size() == got.shape[-1]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_fourier_closed_form():
    pos = torch.tensor([[0.5]])  # one 1-D point at x = 0.5, bands at f = 1 and 2 (max_resolution 4 → up to 4/2)
    got = fourier_features(pos, num_bands=2, max_resolution=(4,))
    expected = torch.tensor([[0.5, math.sin(math.pi * 0.5), math.sin(math.pi * 1.0),
                              math.cos(math.pi * 0.5), math.cos(math.pi * 1.0)]])
    torch.testing.assert_close(got, expected)


def test_fourier_points_select_grid_rows():
    encoding = FourierPositionEncoding(num_bands=3, max_resolution=(4, 6))
    full = encoding(2, (4, 6))
    points = torch.tensor([0, 7, 23])
    torch.testing.assert_close(encoding(2, (4, 6), points=points), full[:, points])
    per_example = torch.tensor([[1, 2], [3, 4]])
    torch.testing.assert_close(encoding(2, (4, 6), points=per_example)[1], full[1, [3, 4]])


def test_fourier_dimension_errors():
    encoding = FourierPositionEncoding(num_bands=3, max_resolution=(4, 6))
    with pytest.raises(ValueError, match="2-D positions"):
        encoding(1, (4,))
    with pytest.raises(ValueError, match="2 coordinates"):
        encoding(1, (4, 6), pos=torch.zeros(1, 3, 3))


def test_trainable_selection():
    encoding = TrainablePositionEncoding((3, 4), num_channels=5)
    assert encoding(2).shape == (2, 12, 5)
    torch.testing.assert_close(encoding(2, torch.tensor([11, 0]))[0], encoding.embeddings[[11, 0]])
    with pytest.raises(ValueError, match=r"\(num_points,\) or \(2, num_points\)"):
        encoding(2, torch.zeros(3, 1, dtype=torch.long))
