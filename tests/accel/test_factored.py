"""Cross-attention in the basis space of factored inputs ``[features, positions]`` (accel/factored.py) against
torch's own LayerNorm, Linear and written-out softmax attention, and against the reference path (itself checked
against Transformers): outputs, masks, attention weights, chunking, gradients, dropout, half precision and the
cost rule."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import perceiverkit.accel.factored as factored_module
from perceiverkit.accel.factored import (
    CUDA_WIDTH_MULTIPLE,
    FactoredInputs,
    aligned_basis_width,
    factored_is_cheaper,
    layer_norm_basis,
    layer_norm_linear_mixing,
    low_rank_cross_attention,
)
from perceiverkit.layers import CrossAttentionBlock

from .block import AccelBlock


def make_inputs(batch=2, length=11, raw=3, features=16, positions=20, mapped=True, shared=True, seed=0,
                dtype=torch.float64, offset=0.0, constant=0):
    gen = torch.Generator().manual_seed(seed)
    randn = lambda *shape: torch.randn(*shape, generator=gen, dtype=dtype)
    pos = randn(1 if shared else batch, length, positions)
    const = randn(constant) + 1.0 if constant else None  # a learned padding vector, off-centre
    if mapped:
        return FactoredInputs(randn(batch, length, raw) + offset, pos, randn(features, raw), randn(features), const)
    return FactoredInputs(randn(batch, length, features) + offset, pos, constant=const)


def randomise(module: nn.Module, seed: int = 1) -> nn.Module:
    """Non-trivial LayerNorm scales/shifts and biases (defaults are 1 and 0)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5 + (1.0 if p.dim() == 1 else 0.0))
    return module


@pytest.mark.parametrize("mapped", [True, False])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("affine", ["full", "no-bias", "none"])
@pytest.mark.parametrize("constant", [0, 7], ids=["no-constant", "constant"])
def test_basis_times_mixing_is_layer_norm_then_linear(mapped, shared, affine, constant):
    # a mean far from 0 stresses the statistics
    inputs = make_inputs(mapped=mapped, shared=shared, offset=3.0, constant=constant)
    channels = inputs.shape[2]
    norm = nn.LayerNorm(channels, elementwise_affine=affine != "none", bias=affine == "full", dtype=torch.float64)
    linear = nn.Linear(channels, 9, dtype=torch.float64)
    randomise(norm), randomise(linear, seed=2)
    x = inputs.materialize()
    expected = F.linear(F.layer_norm(x, (channels,), norm.weight, norm.bias, norm.eps), linear.weight, linear.bias)
    basis = layer_norm_basis(inputs, norm.eps)
    assert basis.shape == (2, 11, inputs.basis_width)
    torch.testing.assert_close(basis @ layer_norm_linear_mixing(inputs, norm, linear), expected, rtol=1e-10, atol=1e-10)


def test_zero_padding_to_an_aligned_width_changes_no_product():
    inputs = make_inputs()
    norm = randomise(nn.LayerNorm(inputs.shape[2], dtype=torch.float64))
    linear = nn.Linear(inputs.shape[2], 9, dtype=torch.float64)
    width = inputs.basis_width + 5
    basis, mixing = layer_norm_basis(inputs, norm.eps, width), layer_norm_linear_mixing(inputs, norm, linear, width)
    assert basis.shape[-1] == mixing.shape[0] == width
    assert not basis[..., inputs.basis_width:].any() and not mixing[inputs.basis_width:].any()
    torch.testing.assert_close(basis[..., :inputs.basis_width], layer_norm_basis(inputs, norm.eps), rtol=0, atol=0)
    torch.testing.assert_close(basis @ mixing, layer_norm_basis(inputs, norm.eps) @ layer_norm_linear_mixing(
        inputs, norm, linear), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=f"narrower than the inputs' {inputs.basis_width} basis channels"):
        layer_norm_basis(inputs, norm.eps, width=inputs.basis_width - 1)


def test_basis_comes_in_the_dtype_that_autocast_would_round_it_to():
    inputs = make_inputs(dtype=torch.float32)
    plain = layer_norm_basis(inputs, 1e-5, inputs.basis_width + 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rounded = layer_norm_basis(inputs, 1e-5, inputs.basis_width + 2)
        half = layer_norm_basis(make_inputs(dtype=torch.float16), 1e-5)  # not float32: left in its own dtype
    assert plain.dtype == torch.float32 and half.dtype == torch.float16
    torch.testing.assert_close(rounded, plain.to(torch.bfloat16), rtol=0, atol=0)


@pytest.mark.slow  # compiles with Inductor
def test_compiled_basis_is_written_once_in_the_output_dtype():
    """Inductor used to form the (B, N, W) concatenation in float32 and then convert it (one extra full write and
    read of the largest elementwise tensor of the ImageNet models); every piece is now rounded first."""
    from torch._inductor.utils import run_and_get_code

    inputs = make_inputs(batch=2, length=64, dtype=torch.bfloat16)
    width = inputs.basis_width + 3
    compiled = torch.compile(lambda raw: layer_norm_basis(
        FactoredInputs(raw, inputs.positions, inputs.weight, inputs.bias), 1e-5, width), fullgraph=True)
    out, (code, *_) = run_and_get_code(compiled, inputs.raw)
    torch.testing.assert_close(out, layer_norm_basis(inputs, 1e-5, width), rtol=0, atol=0)
    full_size = [line for line in code.splitlines() if f"(2, 64, {width})" in line and "empty_strided" in line]
    assert full_size and all("torch.bfloat16" in line for line in full_size), full_size


def test_basis_is_aligned_on_cuda_only():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert [aligned_basis_width(w, cuda) for w in (8, 261, 262, 264, 325)] == [8, 264, 264, 264, 328]
    assert aligned_basis_width(262, cpu) == 262
    assert CUDA_WIDTH_MULTIPLE == 8


@pytest.mark.parametrize("chunk", [None, 4])
def test_block_with_a_padded_basis_matches_the_projected_path(monkeypatch, chunk):
    # What CUDA does (pad 26 basis channels to 32), forced on the CPU: outputs and gradients unchanged.
    widths = []
    monkeypatch.setattr(factored_module, "aligned_basis_width",
                        lambda width, device: widths.append(width) or aligned_basis_width(width, torch.device("cuda")))
    inputs = make_inputs()
    inputs = FactoredInputs(inputs.raw.requires_grad_(), inputs.positions, inputs.weight, inputs.bias)
    block = make_block(inputs, heads=2)
    queries = torch.randn(2, 5, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(3))

    def run(factored: bool):
        block.factored_attention, block.input_chunk_size = factored, chunk
        out = block(queries, inputs)[0]
        return out, torch.autograd.grad(out.square().sum(), [inputs.raw, *block.parameters()])

    (out, grads), (ref, ref_grads) = run(True), run(False)
    assert widths and set(widths) == {inputs.basis_width} and inputs.basis_width % 8
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_materialize_concatenates_mapped_features_and_broadcast_positions():
    inputs = make_inputs()
    x = inputs.materialize()
    torch.testing.assert_close(x[..., :16], inputs.raw @ inputs.weight.T + inputs.bias)
    torch.testing.assert_close(x[1, :, 16:], inputs.positions[0])
    torch.testing.assert_close(inputs.narrow(3, 7).materialize(), x[:, 3:7])


def test_bad_shapes_are_named():
    raw, pos = torch.zeros(2, 5, 3), torch.zeros(1, 5, 4)
    with pytest.raises(ValueError, match="3-D"):
        FactoredInputs(raw[0], pos)
    with pytest.raises(ValueError, match=r"expected \(1 or 2, 5, C\)"):
        FactoredInputs(raw, torch.zeros(1, 6, 4))
    with pytest.raises(ValueError, match=r"weight must have shape \(features, 3\)"):
        FactoredInputs(raw, pos, torch.zeros(8, 4))
    with pytest.raises(ValueError, match="bias needs a weight"):
        FactoredInputs(raw, pos, None, torch.zeros(8))
    norm, linear = nn.LayerNorm(7), nn.Linear(6, 2)
    with pytest.raises(ValueError, match="must both take the 7-channel inputs"):
        layer_norm_linear_mixing(FactoredInputs(raw, pos), norm, linear)


def written_out_block_attention(block: AccelBlock, queries, x, mask=None):
    """The block's attention sub-layer from torch primitives: LN, projections, softmax(q·kᵀ/√d)·v per head."""
    att = block.attention
    heads, qk = att.num_heads, att.qk_channels
    q = att.q_proj(block.block.norm_q(queries))
    k, v = att.kv_proj(block.block.norm_kv(x)).split([qk, att.v_channels], dim=-1)
    split = lambda t: t.unflatten(-1, (heads, -1)).transpose(1, 2)
    scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(qk // heads)
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    weights = torch.nan_to_num(scores.softmax(-1), nan=0.0)
    context = (weights @ split(v)).transpose(1, 2).flatten(2)
    return att.out_proj(context), weights


def make_block(inputs: FactoredInputs, heads=1, qk=24, v=32, q_dim=10, seed=3) -> AccelBlock:
    torch.manual_seed(seed)
    block = AccelBlock(CrossAttentionBlock(q_dim, inputs.shape[2], qk, v, heads).double())
    return randomise(block, seed)


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("masked", [False, True])
def test_block_matches_written_out_attention_with_masks_and_weights(heads, masked):
    inputs = make_inputs()
    block = make_block(inputs, heads)
    queries = torch.randn(2, 5, 10, dtype=torch.float64)
    mask = None
    if masked:
        mask = torch.rand(2, 11, generator=torch.Generator().manual_seed(4)) > 0.4
        mask[1] = False  # every input of example 1 masked: its queries attend to nothing
    assert block.uses_factored_path(inputs, 5)
    norm_q, norm_kv = block.block.norm_q, block.block.norm_kv
    attended, weights = low_rank_cross_attention(
        block.attention, norm_q(queries), lambda s, e: layer_norm_basis(inputs.narrow(s, e), norm_kv.eps), 11,
        layer_norm_linear_mixing(inputs, norm_kv, block.attention.kv_proj), mask, need_weights=True)
    expected, expected_weights = written_out_block_attention(block, queries, inputs.materialize(), mask)
    if masked:  # the library returns zeros, not the output projection's bias, for queries with no input
        no_context = block.attention.out_proj(expected.new_zeros(*expected.shape[:-1], block.attention.v_channels))
        expected = torch.where(mask.any(-1)[:, None, None], expected, no_context)
    torch.testing.assert_close(attended, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(weights, expected_weights, rtol=1e-10, atol=1e-10)
    # and the whole block, factored against projected
    factored, _ = block(queries, inputs, mask)
    block.factored_attention = False
    projected, _ = block(queries, inputs, mask)
    torch.testing.assert_close(factored, projected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("chunk", [1, 4, 11, 64])
def test_chunked_factored_attention_matches_and_has_the_same_gradients(chunk):
    inputs = make_inputs()
    inputs = FactoredInputs(inputs.raw.requires_grad_(), inputs.positions.requires_grad_(),
                            inputs.weight.requires_grad_(), inputs.bias.requires_grad_())
    block = make_block(inputs, heads=2)
    queries = torch.randn(2, 5, 10, requires_grad=True, dtype=torch.float64)
    leaves = [queries, inputs.raw, inputs.positions, inputs.weight, inputs.bias, *block.parameters()]

    def run(factored: bool, chunk_size):
        block.factored_attention, block.input_chunk_size = factored, chunk_size
        out = block(queries, inputs)[0]
        return out, torch.autograd.grad(out.square().sum(), leaves)

    out, grads = run(True, chunk)
    ref, ref_grads = run(False, None)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_dropout_draws_the_same_masks_as_the_projected_path():
    # Same weight-matrix shape and the same kernel: the same random numbers drop the same weights.
    inputs = make_inputs(dtype=torch.float32)
    block = make_block(inputs).float()
    block.attention.dropout = 0.5
    block.train()
    queries = torch.randn(2, 5, 10)
    torch.manual_seed(7)
    factored = block(queries, inputs)[0]
    block.factored_attention = False
    torch.manual_seed(7)
    projected = block(queries, inputs)[0]
    torch.manual_seed(8)
    other = block(queries, inputs)[0]
    torch.testing.assert_close(factored, projected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(projected, other, atol=1e-3)  # dropout did act


def test_bf16_autocast_error_is_like_the_projected_paths():
    inputs = make_inputs(batch=2, length=300, raw=3, features=64, positions=64, dtype=torch.float32, seed=5)
    block = make_block(inputs, qk=128, v=128, q_dim=32).float()
    queries = torch.randn(2, 16, 32)
    block.factored_attention = False
    reference = block(queries, inputs)[0]
    errors = {}
    for factored in (True, False):
        block.factored_attention = factored
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = block(queries, inputs)[0]
        errors[factored] = ((out.float() - reference).abs().max() / reference.abs().max()).item()
    assert errors[True] < max(2 * errors[False], 1e-2), errors


def test_cost_rule_and_fallback_for_wide_raw_features():
    narrow = make_inputs(raw=3, features=256, positions=256, dtype=torch.float32)
    assert factored_is_cheaper(narrow, num_queries=512, num_heads=1, qk_channels=512, v_channels=512)
    # many heads multiply the basis-space work; projecting to 64 channels is cheaper than a 515-wide basis
    assert not factored_is_cheaper(narrow, num_queries=512, num_heads=8, qk_channels=512, v_channels=512)
    assert not factored_is_cheaper(narrow, num_queries=512, num_heads=1, qk_channels=32, v_channels=32)
    wide = make_inputs(mapped=False, features=40, positions=8, dtype=torch.float32)
    block = make_block(wide, qk=8, v=8).float()
    assert not block.uses_factored_path(wide, 50)  # 2·50·51 basis-space vs (48 + 50)·16 projected
    assert block.uses_factored_path(wide, 5)  # 2·5·51 vs (48 + 5)·16
    queries = torch.randn(2, 50, 10)
    torch.testing.assert_close(block(queries, wide)[0], block(queries, wide.materialize())[0])


def test_work_per_input_is_the_closed_form():
    """FLOPs that grow with the number of inputs N (the difference between two N), counted by PyTorch's counter:
    basis-space attention 4·B·H·M·W (+ the mapped features' Gram form 2·B·Cr²) against projecting, 2·B·C·(D + Dv)
    for keys/values + 2·B·M·(D + Dv) for attention (+ 2·B·Cr·Cf to form the mapped features)."""
    from perceiverkit.benchmark import count_flops

    batch, raw, features, positions, queries, heads, qk, v = 2, 3, 16, 20, 6, 2, 24, 32

    def flops(length: int, factored: bool) -> int:
        gen = torch.Generator().manual_seed(0)
        inputs = FactoredInputs(torch.randn(batch, length, raw, generator=gen),
                                torch.randn(1, length, positions, generator=gen),
                                torch.randn(features, raw, generator=gen), torch.randn(features, generator=gen))
        block = AccelBlock(CrossAttentionBlock(10, features + positions, qk, v, heads))
        block.factored_attention = factored
        return count_flops(lambda: block(torch.randn(batch, queries, 10), inputs))[1]

    width = raw + positions + 3
    per_input = {factored: (flops(200, factored) - flops(100, factored)) / 100 for factored in (True, False)}
    assert per_input[True] == 4 * batch * heads * queries * width + 2 * batch * raw**2
    assert per_input[False] == 2 * batch * (features + positions + queries) * (qk + v) + 2 * batch * raw * features
