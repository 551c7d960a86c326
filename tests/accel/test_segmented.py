"""Several modalities under one softmax, each factored one in its own basis (accel/segmented.py), against the
reference path on the concatenated inputs: outputs, masks, gradients, query blocks, dropout and the conditions."""

from __future__ import annotations

import pytest
import torch

import perceiverkit.accel.kernels as kernels
import perceiverkit.accel.segmented as segmented_module
from perceiverkit.accel import FactoredInputs, SegmentedInputs
from perceiverkit.accel.segmented import cheaper_in_basis, segmented_cross_attention

from .test_factored import make_block, make_inputs


def make_segments(batch=2, seed=0) -> SegmentedInputs:
    """Three modalities 42 channels wide: mapped features + shared positions + padding, a plain tensor, and
    unmapped features + per-example positions + padding."""
    first = make_inputs(batch, length=11, raw=3, features=16, positions=20, constant=6, seed=seed)
    plain = torch.randn(batch, 4, 42, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 1))
    last = make_inputs(batch, length=9, features=10, positions=25, mapped=False, shared=False, constant=7,
                       seed=seed + 2, offset=-2.0)
    return SegmentedInputs((first, plain, last))


def test_segmented_inputs_concatenate_their_segments():
    segmented = make_segments()
    x = segmented.materialize()
    assert segmented.shape == x.shape == (2, 24, 42) and segmented.dtype == torch.float64
    first, plain, last = segmented.segments
    torch.testing.assert_close(x[:, 11:15], plain, rtol=0, atol=0)
    torch.testing.assert_close(x[:, 15:, 35:], last.constant.expand(2, 9, 7), rtol=0, atol=0)
    torch.testing.assert_close(x[:, :11], first.materialize(), rtol=0, atol=0)
    with pytest.raises(ValueError, match="share batch size and channels"):
        SegmentedInputs((first, torch.zeros(2, 4, 41)))
    with pytest.raises(ValueError, match="at least one segment"):
        SegmentedInputs(())
    with pytest.raises(ValueError, match="constant channels must be 1-D"):
        FactoredInputs(first.raw, first.positions, constant=torch.zeros(1, 3))


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("masked", [False, True])
def test_block_attends_to_each_segment_in_its_own_basis_with_one_softmax(heads, masked):
    segmented = make_segments()
    first, plain, last = segmented.segments
    leaves = [first.raw, first.constant, plain, last.raw, last.positions, last.constant]
    for leaf in leaves:
        leaf.requires_grad_()
    block = make_block(first, heads)
    queries = torch.randn(2, 5, 10, dtype=torch.float64, requires_grad=True)
    mask = None
    if masked:  # some inputs of every segment masked in example 0; every input masked in example 1
        mask = torch.rand(2, 24, generator=torch.Generator().manual_seed(4)) > 0.4
        mask[1] = False
    assert block.uses_factored_path(segmented, 5)
    assert cheaper_in_basis(block.block, first, 5) and cheaper_in_basis(block.block, last, 5)

    def run(factored: bool):
        block.factored_attention = factored
        out = block(queries, segmented, mask)[0]
        return out, torch.autograd.grad(out.square().sum(), [queries, *leaves, *block.parameters()])

    (out, grads), (ref, ref_grads) = run(True), run(False)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("mask_kind", ["none", "keys", "per-query"])
def test_segments_are_attended_in_query_blocks_within_the_score_budget(monkeypatch, mask_kind):
    # 5 queries over 24 keys, 2 heads, batch 2: a budget of 2 queries' scores gives blocks of 2, 2 and 1; outputs
    # and gradients must be those of one block (the unblocked path is checked against projection above).
    segmented = make_segments()
    block = make_block(segmented.segments[0], heads=2)
    queries = torch.randn(2, 5, 10, dtype=torch.float64, requires_grad=True)
    def runs(queries, segmented, mask):  # what fast_cross_attention calls; the mask goes to attend_segments unchanged
        return segmented_cross_attention(block.block, queries, segmented, mask)

    gen = torch.Generator().manual_seed(5)
    mask = {"none": None, "keys": torch.rand(2, 24, generator=gen) > 0.3,
            "per-query": torch.rand(2, 5, 24, generator=gen) > 0.3}[mask_kind]
    if mask_kind == "keys":
        mask[1] = False  # no valid key in example 1: zeros
    elif mask_kind == "per-query":
        mask[0, 3] = False  # one query with no valid key: zeros

    def run():
        out = runs(queries, segmented, mask)
        grads = torch.autograd.grad(out.square().sum(), [queries, *block.parameters()], allow_unused=True)
        return out, [g for g in grads if g is not None]  # (the MLP is not part of attention)

    whole, whole_grads = run()
    monkeypatch.setattr(kernels, "SCORE_BLOCK_ELEMENTS", 2 * 2 * 24 * 2)
    calls = []
    original = segmented_module._attend_segments
    monkeypatch.setattr(segmented_module, "_attend_segments",
                        lambda *a: calls.append(a[0][0][0].shape[-2]) or original(*a))
    blocked, blocked_grads = run()
    assert calls == [2, 2, 1]
    torch.testing.assert_close(blocked, whole, rtol=1e-12, atol=1e-12)
    for got, want in zip(blocked_grads, whole_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_segments_are_projected_when_weights_are_asked_for_or_inputs_are_chunked():
    segmented = make_segments()
    block = make_block(segmented.segments[0], heads=2)
    queries = torch.randn(2, 5, 10, dtype=torch.float64)
    x = segmented.materialize()
    expected, expected_weights = block(queries, x, need_weights=True)
    assert not block.uses_factored_path(segmented, 5, need_weights=True)
    _out, weights = block(queries, segmented, need_weights=True)
    torch.testing.assert_close(weights, expected_weights, rtol=0, atol=0)
    block.input_chunk_size = 5
    assert not block.uses_factored_path(segmented, 5)
    torch.testing.assert_close(block(queries, segmented)[0], expected, rtol=1e-10, atol=1e-10)


def test_segments_in_training_draw_dropout_and_learn():
    segmented = make_segments()
    block = make_block(segmented.segments[0], heads=2)
    block.attention.dropout = 0.5
    block.train()
    queries = torch.randn(2, 5, 10, dtype=torch.float64)
    torch.manual_seed(0)
    a = block(queries, segmented)[0]
    b = block(queries, segmented)[0]
    block.eval()
    c = block(queries, segmented)[0]
    assert torch.isfinite(a).all() and not torch.allclose(a, b) and torch.allclose(c, block(queries, segmented)[0])
