"""Attention against closed-form references: naive softmax attention and torch.nn.MultiheadAttention."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import perceiverkit.layers.attention_ops as attention_module
from perceiverkit.layers import MultiHeadAttention, attend

KERNELS = ["fused", "explicit", "padded"]


def naive_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    return scores.softmax(-1) @ v


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("need_weights", [False, True])
def test_attend_matches_naive_softmax(need_weights, kernel):
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 4)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    out, weights = attend(q, k, v, mask, need_weights=need_weights, kernel=kernel)
    torch.testing.assert_close(out, naive_attention(q, k, v, mask), rtol=1e-5, atol=1e-6)
    if need_weights:
        assert weights.shape == (2, 3, 5, 7)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5))
        assert torch.all(weights[1, :, :, 4:] == 0)
    else:
        assert weights is None


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("need_weights", [False, True])
def test_fully_masked_query_gets_zeros_and_finite_gradients(need_weights, kernel):
    torch.manual_seed(0)
    q = torch.randn(2, 2, 3, 4, requires_grad=True)
    k = torch.randn(2, 2, 5, 4, requires_grad=True)
    v = torch.randn(2, 2, 5, 4, requires_grad=True)
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[0] = False
    out, weights = attend(q, k, v, mask, need_weights=need_weights, kernel=kernel)
    assert torch.all(out[0] == 0) and torch.isfinite(out).all()
    torch.testing.assert_close(out[1], naive_attention(q, k, v, mask)[1])
    out.sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    if need_weights:
        assert torch.all(weights[0] == 0)


@pytest.mark.parametrize("kernel", KERNELS)
def test_per_query_mask(kernel):
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 1, 2, 4), torch.randn(1, 1, 3, 4), torch.randn(1, 1, 3, 4)
    mask = torch.tensor([[[True, False, False], [False, True, True]]])
    out, _ = attend(q, k, v, mask, kernel=kernel)
    torch.testing.assert_close(out[0, 0, 0], v[0, 0, 0])  # one key left: its value, exactly
    torch.testing.assert_close(out[:, :, 1:], naive_attention(q, k, v, mask[:, 1])[:, :, 1:])


# --- the explicit path over query blocks (what wide heads take on CUDA) ----------------------------------------

@pytest.mark.parametrize("block_elements", [1, 2 * 3 * 7 * 2, 2 * 3 * 7 * 3, 10**9],
                         ids=["one-query", "two-queries", "three-then-two", "whole"])
def test_explicit_blocks_match_the_fused_kernel_with_masks_and_gradients(monkeypatch, block_elements):
    # Blocks of 1, 2 (5 queries: the last block is short) and all queries; a per-query mask with one fully
    # masked row; outputs and the gradients of q, k and v must equal SDPA's.
    monkeypatch.setattr(attention_module, "SCORE_BLOCK_ELEMENTS", block_elements)
    torch.manual_seed(0)
    leaves = [torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 6)]
    mask = torch.rand(2, 5, 7) > 0.3
    mask[1, 2] = False
    results = {}
    for kernel in KERNELS:
        q, k, v = (t.clone().requires_grad_() for t in leaves)
        out, _ = attend(q, k, v, mask, kernel=kernel)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results[kernel] = (out, q.grad, k.grad, v.grad)
    for fused, explicit in zip(results["fused"], results["explicit"]):
        torch.testing.assert_close(explicit, fused, rtol=1e-5, atol=1e-6)
    assert torch.all(results["explicit"][0][1, :, 2] == 0)


def test_explicit_path_keeps_half_precision_weights_under_autocast():
    # Under autocast softmax would widen the scores to float32 (twice the memory of the largest tensor);
    # the explicit path keeps them in the compute dtype, and agrees with a float32 reference to bf16 rounding.
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 1, 4, 300), torch.randn(1, 1, 9, 300), torch.randn(1, 1, 9, 300)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, weights = attend(q, k, v, need_weights=True, kernel="explicit")
    assert weights.dtype == torch.bfloat16 and out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), naive_attention(q, k, v), rtol=0.05, atol=0.05)


def test_explicit_path_dropout_keeps_the_expectation():
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 1, 3, 4), torch.randn(1, 1, 6, 4), torch.randn(1, 1, 6, 2)
    runs = torch.stack([attend(q, k, v, dropout_p=0.5, kernel="explicit")[0] for _ in range(4000)])
    torch.testing.assert_close(runs.mean(0), naive_attention(q, k, v), rtol=0.1, atol=0.05)
    assert not torch.equal(runs[0], runs[1])


def test_auto_kernel_prefers_explicit_for_wide_heads_on_cuda_and_unequal_widths_on_cpu(monkeypatch):
    narrow, wide = torch.empty(1, 1, 2, 256), torch.empty(1, 1, 2, 257)
    assert not attention_module.prefers_explicit(wide, wide)  # CPU: SDPA's CPU flash kernel takes any width...
    assert attention_module.prefers_explicit(narrow, wide)  # ...but only one width for queries/keys and values
    assert attention_module.prefers_explicit(wide, narrow)
    with monkeypatch.context() as patch:  # compiled / exported graphs keep SDPA (see tests/test_export.py)
        patch.setattr(torch.compiler, "is_compiling", lambda: True)
        assert not attention_module.prefers_explicit(narrow, wide)
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():  # CUDA tensors without a GPU: only their metadata is read
        cuda_narrow, cuda_wide = torch.empty(1, 1, 2, 256, device="cuda"), torch.empty(1, 1, 2, 257, device="cuda")
        assert attention_module.prefers_explicit(cuda_wide, cuda_narrow)  # a wide query/key head
        assert attention_module.prefers_explicit(cuda_narrow, cuda_wide)  # a wide value head
        assert not attention_module.prefers_explicit(cuda_narrow, cuda_narrow)
    with pytest.raises(ValueError, match="kernel must be"):
        attend(narrow, narrow, narrow, kernel="flash")


@pytest.mark.parametrize("value_width", [32, 160])
def test_cpu_sdpa_uses_its_flash_kernel_only_for_equal_widths(value_width):
    # The premise of prefers_explicit on the CPU: with unequal widths PyTorch computes SDPA by its math fallback
    # (no flash kernel), which the explicit path does with less bookkeeping. If a PyTorch upgrade adds a CPU
    # flash kernel for unequal widths, this fails and the rule should be measured again.
    q, k, v = torch.randn(1, 2, 8, 32), torch.randn(1, 2, 8, 32), torch.randn(1, 2, 8, value_width)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        F.scaled_dot_product_attention(q, k, v)
    names = {event.name for event in prof.events()}
    assert ("aten::_scaled_dot_product_flash_attention_for_cpu" in names) == (value_width == 32)
    fused = F.scaled_dot_product_attention(q, k, v)
    auto, _ = attend(q, k, v)  # explicit for unequal widths: the same result
    torch.testing.assert_close(auto, fused)


def test_query_blocks_are_equal_and_within_the_budget(monkeypatch):
    monkeypatch.setattr(attention_module, "SCORE_BLOCK_ELEMENTS", 1000)
    for queries, per_query, expected in ((10, 100, 10), (11, 100, 6), (512, 3, 256), (5, 10**6, 1), (0, 7, 1)):
        block = attention_module._query_block(queries, per_query)
        assert block == expected, (queries, per_query)
        assert block * per_query <= 1000 or block == 1


def test_no_queries_give_an_empty_context():
    q, k, v = torch.randn(2, 1, 0, 4), torch.randn(2, 1, 3, 4), torch.randn(2, 1, 3, 5)
    out, _ = attend(q, k, v, kernel="explicit")
    assert out.shape == (2, 1, 0, 5)


def test_mask_errors():
    q = torch.randn(1, 1, 2, 4)
    with pytest.raises(TypeError, match="boolean"):
        attend(q, q, q, torch.ones(1, 2))
    with pytest.raises(ValueError, match=r"\(batch, keys\)"):
        attend(q, q, q, torch.ones(1, 1, 1, 2, dtype=torch.bool))


def test_heads_must_divide_widths():
    with pytest.raises(ValueError, match="qk_channels \\(10\\) must be divisible by the number of heads \\(4\\)"):
        MultiHeadAttention(8, 8, 10, 8, 4, 8, self_attention=True)


@pytest.mark.parametrize("self_attention", [True, False])
def test_matches_torch_multihead_attention(self_attention):
    """With equal widths our attention is torch.nn.MultiheadAttention with the same weights."""
    torch.manual_seed(0)
    dim, heads = 16, 4
    reference = torch.nn.MultiheadAttention(dim, heads, batch_first=True).eval()
    ours = MultiHeadAttention(dim, dim, dim, dim, heads, dim, self_attention=self_attention).eval()
    with torch.no_grad():
        if self_attention:
            ours.qkv_proj.weight.copy_(reference.in_proj_weight)
            ours.qkv_proj.bias.copy_(reference.in_proj_bias)
        else:
            ours.q_proj.weight.copy_(reference.in_proj_weight[:dim])
            ours.q_proj.bias.copy_(reference.in_proj_bias[:dim])
            ours.kv_proj.weight.copy_(reference.in_proj_weight[dim:])
            ours.kv_proj.bias.copy_(reference.in_proj_bias[dim:])
        ours.out_proj.load_state_dict(reference.out_proj.state_dict())
    x = torch.randn(2, 6, dim)
    y = x if self_attention else torch.randn(2, 9, dim)
    padding = torch.zeros(2, y.shape[1], dtype=torch.bool)
    padding[1, -2:] = True  # torch's convention: True = ignore
    expected, expected_weights = reference(x, y, y, key_padding_mask=padding)
    got, weights = ours(x, None if self_attention else y, mask=~padding, need_weights=True)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(weights.mean(1), expected_weights, rtol=1e-5, atol=1e-6)
    got_fast, _ = ours(x, None if self_attention else y, mask=~padding)
    torch.testing.assert_close(got_fast, expected, rtol=1e-5, atol=1e-6)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, 8, 8, 8, 2, 8, self_attention=True, dropout=0.5)
    x = torch.randn(1, 10, 8)
    attn.eval()
    assert torch.equal(attn(x)[0], attn(x)[0])
    attn.train()
    assert not torch.equal(attn(x)[0], attn(x)[0])


@pytest.mark.parametrize("widths", [(4, 12), (12, 4)], ids=["narrow-keys", "narrow-values"])
def test_padded_kernel_gives_the_fused_result_and_gradients(widths):
    d, dv = widths
    gen = torch.Generator().manual_seed(5)
    q, k = torch.randn(2, 3, 6, d, generator=gen), torch.randn(2, 3, 9, d, generator=gen)
    v = torch.randn(2, 3, 9, dv, generator=gen)
    mask = torch.rand(2, 9, generator=gen) > 0.3
    mask[1] = False

    def run(kernel):
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        out, _ = attend(*leaves, mask, kernel=kernel)
        return out, torch.autograd.grad(out.square().sum(), leaves)

    (out, grads), (ref, ref_grads) = run("padded"), run("fused")
    assert out.shape == (2, 3, 6, dv)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_set_attention_kernel_reaches_every_attention_module():
    from perceiverkit import PerceiverEncoder
    from perceiverkit.config import EncoderConfig
    from perceiverkit.layers import set_attention_kernel

    encoder = PerceiverEncoder(EncoderConfig(num_latents=4, d_latents=16, num_self_attends_per_block=2,
                                             num_self_attention_heads=2, num_cross_attention_heads=1), 8).eval()
    x = torch.randn(2, 5, 8)
    expected = encoder(x).latents
    assert set_attention_kernel(encoder, "padded", self_attention_only=True) == 2
    assert encoder.cross_attention.attention.kernel == "auto"
    assert set_attention_kernel(encoder, "explicit") == 3
    assert {m.kernel for m in encoder.modules() if isinstance(m, MultiHeadAttention)} == {"explicit"}
    torch.testing.assert_close(encoder(x).latents, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"attention kernel must be one of \['auto', 'fused', 'explicit', 'padded'\]"):
        set_attention_kernel(encoder, "flash")
