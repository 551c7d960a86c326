"""The kernel choice (accel/kernels.py) against the reference attend and closed-form references."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import perceiverkit.accel.kernels as kernels
from perceiverkit import PerceiverEncoder
from perceiverkit.accel import reference_path, set_attention_kernel
from perceiverkit.accel.kernels import attend_with_kernel
from perceiverkit.config import EncoderConfig
from perceiverkit.layers import MultiHeadAttention, attend

from ..layers.test_attention import naive_attention

KERNELS = ["auto", "fused", "explicit"]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("need_weights", [False, True])
def test_every_kernel_matches_naive_softmax(need_weights, kernel):
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 4)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    out, weights = attend_with_kernel(q, k, v, mask, need_weights=need_weights, kernel=kernel)
    torch.testing.assert_close(out, naive_attention(q, k, v, mask), rtol=1e-5, atol=1e-6)
    if need_weights:
        torch.testing.assert_close(weights, attend(q, k, v, mask, need_weights=True)[1], rtol=0, atol=0)
    else:
        assert weights is None


# --- the explicit path over query blocks (what wide heads take on CUDA) ----------------------------------------

@pytest.mark.parametrize("block_elements", [1, 2 * 3 * 7 * 2, 2 * 3 * 7 * 3, 10**9],
                         ids=["one-query", "two-queries", "three-then-two", "whole"])
def test_explicit_blocks_match_the_reference_with_masks_and_gradients(monkeypatch, block_elements):
    # Blocks of 1, 2 (5 queries: the last block is short) and all queries; a per-query mask with one fully
    # masked row; outputs and the gradients of q, k and v must equal the reference's (SDPA; its own fully masked
    # and per-query mask cases are checked against naive softmax in tests/layers/test_attention.py).
    monkeypatch.setattr(kernels, "SCORE_BLOCK_ELEMENTS", block_elements)
    torch.manual_seed(0)
    leaves = [torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 6)]
    mask = torch.rand(2, 5, 7) > 0.3
    mask[1, 2] = False
    results = {}
    for name, fn in (("reference", attend), ("explicit", lambda *a: attend_with_kernel(*a, kernel="explicit"))):
        q, k, v = (t.clone().requires_grad_() for t in leaves)
        out, _ = fn(q, k, v, mask)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results[name] = (out, q.grad, k.grad, v.grad)
    for reference, explicit in zip(results["reference"], results["explicit"], strict=True):
        torch.testing.assert_close(explicit, reference, rtol=1e-5, atol=1e-6)
    assert torch.all(results["explicit"][0][1, :, 2] == 0)


def test_explicit_path_dropout_keeps_the_expectation():
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 1, 3, 4), torch.randn(1, 1, 6, 4), torch.randn(1, 1, 6, 2)
    runs = torch.stack([attend_with_kernel(q, k, v, dropout_p=0.5, kernel="explicit")[0] for _ in range(4000)])
    torch.testing.assert_close(runs.mean(0), naive_attention(q, k, v), rtol=0.1, atol=0.05)
    assert not torch.equal(runs[0], runs[1])


def test_auto_kernel_prefers_explicit_for_wide_heads_on_cuda_and_unequal_widths_on_cpu(monkeypatch):
    narrow, wide = torch.empty(1, 1, 2, 256), torch.empty(1, 1, 2, 257)
    assert not kernels.prefers_explicit(wide, wide)  # CPU: SDPA's CPU flash kernel takes any width...
    assert kernels.prefers_explicit(narrow, wide)  # ...but only one width for queries/keys and values
    assert kernels.prefers_explicit(wide, narrow)
    with monkeypatch.context() as patch:  # compiled / exported graphs keep SDPA (see tests/test_export.py)
        patch.setattr(torch.compiler, "is_compiling", lambda: True)
        assert not kernels.prefers_explicit(narrow, wide)
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():  # CUDA tensors without a GPU: only their metadata is read
        cuda_narrow, cuda_wide = torch.empty(1, 1, 2, 256, device="cuda"), torch.empty(1, 1, 2, 257, device="cuda")
        assert kernels.prefers_explicit(cuda_wide, cuda_narrow)  # a wide query/key head
        assert kernels.prefers_explicit(cuda_narrow, cuda_wide)  # a wide value head
        assert not kernels.prefers_explicit(cuda_narrow, cuda_narrow)
    with pytest.raises(ValueError, match="kernel must be"):
        attend_with_kernel(narrow, narrow, narrow, kernel="flash")


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
    auto, _ = attend_with_kernel(q, k, v)  # explicit for unequal widths: the same result
    torch.testing.assert_close(auto, fused)


def test_query_blocks_are_equal_and_within_the_budget(monkeypatch):
    monkeypatch.setattr(kernels, "SCORE_BLOCK_ELEMENTS", 1000)
    for queries, per_query, expected in ((10, 100, 10), (11, 100, 6), (512, 3, 256), (5, 10**6, 1), (0, 7, 1)):
        block = kernels.query_block(queries, per_query)
        assert block == expected, (queries, per_query)
        assert block * per_query <= 1000 or block == 1


def test_no_queries_give_an_empty_context():
    q, k, v = torch.randn(2, 1, 0, 4), torch.randn(2, 1, 3, 4), torch.randn(2, 1, 3, 5)
    out, _ = attend_with_kernel(q, k, v, kernel="explicit")
    assert out.shape == (2, 1, 0, 5)


def test_modules_take_the_kernel_choice_only_while_fast_paths_are_on(monkeypatch):
    """The one way in from layers/: MultiHeadAttention calls module_attend, which takes the explicit path for
    unequal widths on the CPU, and the reference inside reference_path()."""
    calls = []
    monkeypatch.setattr(kernels, "attend_explicit", lambda *a: calls.append(1) or attend(*a)[0])
    attention = MultiHeadAttention(8, 8, 4, 12, 2, 8, self_attention=True).eval()
    x = torch.randn(2, 5, 8)
    fast = attention(x)[0]
    assert calls == [1]
    with reference_path():
        reference = attention(x)[0]
    assert calls == [1]
    torch.testing.assert_close(fast, reference)


def test_set_attention_kernel_reaches_every_attention_module():
    encoder = PerceiverEncoder(EncoderConfig(num_latents=4, d_latents=16, num_self_attends_per_block=2,
                                             num_self_attention_heads=2, num_cross_attention_heads=1), 8).eval()
    x = torch.randn(2, 5, 8)
    expected = encoder(x).latents
    assert set_attention_kernel(encoder, "fused", self_attention_only=True) == 2
    assert getattr(encoder.cross_attention.attention, "kernel", "auto") == "auto"
    assert set_attention_kernel(encoder, "explicit") == 3
    assert {m.kernel for m in encoder.modules() if isinstance(m, MultiHeadAttention)} == {"explicit"}
    torch.testing.assert_close(encoder(x).latents, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"attention kernel must be one of \['auto', 'fused', 'explicit'\]"):
        set_attention_kernel(encoder, "flash")
