"""The reference attention against closed-form references: naive softmax attention and torch.nn.MultiheadAttention.

Faster kernels for the same result are tested in tests/accel/test_kernels.py.
"""

from __future__ import annotations

import math

import pytest
import torch

from perceiverkit.accel import reference_path
from perceiverkit.layers import MultiHeadAttention, attend


def naive_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    return scores.softmax(-1) @ v


@pytest.mark.parametrize("need_weights", [False, True])
def test_attend_matches_naive_softmax(need_weights):
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 4)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    out, weights = attend(q, k, v, mask, need_weights=need_weights)
    torch.testing.assert_close(out, naive_attention(q, k, v, mask), rtol=1e-5, atol=1e-6)
    if need_weights:
        assert weights.shape == (2, 3, 5, 7)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5))
        assert torch.all(weights[1, :, :, 4:] == 0)
    else:
        assert weights is None


@pytest.mark.parametrize("need_weights", [False, True])
def test_fully_masked_query_gets_zeros_and_finite_gradients(need_weights):
    torch.manual_seed(0)
    q = torch.randn(2, 2, 3, 4, requires_grad=True)
    k = torch.randn(2, 2, 5, 4, requires_grad=True)
    v = torch.randn(2, 2, 5, 4, requires_grad=True)
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[0] = False
    out, weights = attend(q, k, v, mask, need_weights=need_weights)
    assert torch.all(out[0] == 0) and torch.isfinite(out).all()
    torch.testing.assert_close(out[1], naive_attention(q, k, v, mask)[1])
    out.sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    if need_weights:
        assert torch.all(weights[0] == 0)


@pytest.mark.parametrize("need_weights", [False, True])
def test_per_query_mask(need_weights):
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 1, 2, 4), torch.randn(1, 1, 3, 4), torch.randn(1, 1, 3, 4)
    mask = torch.tensor([[[True, False, False], [False, True, True]]])
    out, _ = attend(q, k, v, mask, need_weights=need_weights)
    torch.testing.assert_close(out[0, 0, 0], v[0, 0, 0])  # one key left: its value, exactly
    torch.testing.assert_close(out[:, :, 1:], naive_attention(q, k, v, mask[:, 1])[:, :, 1:])


def test_weights_keep_half_precision_under_autocast():
    # Under autocast softmax would widen the scores to float32 (twice the memory of the largest tensor);
    # the weights stay in the compute dtype, and agree with a float32 reference to bf16 rounding.
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 1, 4, 300), torch.randn(1, 1, 9, 300), torch.randn(1, 1, 9, 300)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, weights = attend(q, k, v, need_weights=True)
    assert weights.dtype == torch.bfloat16 and out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), naive_attention(q, k, v), rtol=0.05, atol=0.05)


def test_mask_errors():
    q = torch.randn(1, 1, 2, 4)
    with pytest.raises(TypeError, match="boolean"):
        attend(q, q, q, torch.ones(1, 2))
    with pytest.raises(ValueError, match=r"\(batch, keys\)"):
        attend(q, q, q, torch.ones(1, 1, 1, 2, dtype=torch.bool))


def test_heads_must_divide_widths():
    with pytest.raises(ValueError, match="qk_channels \\(10\\) must be divisible by the number of heads \\(4\\)"):
        MultiHeadAttention(8, 8, 10, 8, 4, 8, self_attention=True)


@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast", "reference"])
@pytest.mark.parametrize("self_attention", [True, False])
def test_matches_torch_multihead_attention(self_attention, fast_paths):
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
    with reference_path() if not fast_paths else torch.no_grad():
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
