"""Chunked (online-softmax) cross-attention (accel/chunked.py) against the reference path and naive softmax
attention: outputs, masks, gradients, dropout, the encoder and a task model, and a check that no queries × N
intermediate exists."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from perceiverkit import EncoderConfig, MaskedLanguageModel, MaskedLanguageModelConfig, PerceiverEncoder
from perceiverkit.accel import attend_chunked, reference_path
from perceiverkit.accel.chunked import chunked_cross_attention
from perceiverkit.layers import CrossAttentionBlock, MultiHeadAttention, attend

from .block import AccelBlock

N = 23  # prime: no chunk size below it divides it
CHUNK_SIZES = [1, 4, 7, 22, 23, 64]  # the last two: one chunk holding everything


def naive_attention(q, k, v, mask=None):
    """Softmax attention written out, for (B, N) masks; fully masked rows are zeroed (the library's contract)."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is None:
        return scores.softmax(-1) @ v
    keep = mask[:, None, None, :]
    weights = scores.masked_fill(~keep, float("-inf")).softmax(-1)
    return torch.nan_to_num(weights, nan=0.0) @ v


def sliced(k, v):
    return lambda start, end: (k[..., start:end, :], v[..., start:end, :])


def random_qkv(seed=0, requires_grad=False):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(2, 3, 5, 8), (2, 3, N, 8), (2, 3, N, 4)]
    return [torch.randn(s, generator=gen).requires_grad_(requires_grad) for s in shapes]


def awkward_mask():
    """Batch 0: its first two 4-key chunks (and more) masked; batch 1: no valid key at all."""
    mask = torch.ones(2, N, dtype=torch.bool)
    mask[0, :9] = False
    mask[0, 15] = False
    mask[1] = False
    return mask


def small_block(dropout=0.0):
    torch.manual_seed(0)
    block = CrossAttentionBlock(q_dim=16, kv_dim=6, qk_channels=8, v_channels=12, num_heads=2, dropout=dropout)
    with torch.no_grad():  # non-trivial norm scales and biases, so that a skipped LayerNorm would show
        for p in block.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return AccelBlock(block)


# --- attend_chunked: the online-softmax maths ---------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_chunked_matches_naive_softmax_and_attend(chunk_size):
    q, k, v = random_qkv()
    out = attend_chunked(q, sliced(k, v), N, chunk_size)
    torch.testing.assert_close(out, naive_attention(q, k, v), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out, attend(q, k, v)[0], rtol=1e-5, atol=1e-5)


def test_large_scores_do_not_overflow():
    """Scores far beyond exp()'s range: the running max keeps every exponent <= 0."""
    q, k, v = random_qkv()
    q = q * 300
    out = attend_chunked(q, sliced(k, v), N, 5)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, naive_attention(q, k, v), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk_size", [4, 5, 23])
def test_masked_chunks_and_queries_without_keys(chunk_size):
    q, k, v = random_qkv(requires_grad=True)
    mask = awkward_mask()
    out = attend_chunked(q, sliced(k, v), N, chunk_size, mask, checkpoint_chunks=True)
    assert torch.all(out[1] == 0)  # no valid key: exact zeros, as attend() returns
    torch.testing.assert_close(out[0], naive_attention(q, k, v, mask)[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out, attend(q, k, v, mask)[0], rtol=1e-5, atol=1e-5)
    (out * torch.randn_like(out)).sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    assert torch.all(k.grad[0, :, :9] == 0) and torch.all(v.grad[0, :, :9] == 0)  # masked keys get no gradient


def test_per_query_mask():
    q, k, v = random_qkv()
    mask = torch.rand(2, 5, N, generator=torch.Generator().manual_seed(1)) > 0.5
    mask[0, 2] = False  # one query with no key
    out = attend_chunked(q, sliced(k, v), N, 6, mask)
    torch.testing.assert_close(out, attend(q, k, v, mask)[0], rtol=1e-5, atol=1e-5)
    assert torch.all(out[0, :, 2] == 0)


@pytest.mark.parametrize("checkpoint_chunks", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_gradients_match_unchunked(checkpoint_chunks, masked):
    mask = awkward_mask() if masked else None
    q, k, v = random_qkv(requires_grad=True)
    grad_out = torch.randn(2, 3, 5, 4, generator=torch.Generator().manual_seed(2))
    attend(q, k, v, mask)[0].backward(grad_out)
    expected = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    attend_chunked(q, sliced(k, v), N, 5, mask, checkpoint_chunks=checkpoint_chunks).backward(grad_out)
    for t, want in zip((q, k, v), expected, strict=True):
        torch.testing.assert_close(t.grad, want, rtol=1e-5, atol=1e-5)


def test_dropout_is_softmax_then_dropout():
    """Reference: full softmax weights, dropped out chunk by chunk with the same random draws."""
    q, k, v = random_qkv()
    p, chunk = 0.3, 6
    torch.manual_seed(7)
    out = attend_chunked(q, sliced(k, v), N, chunk, dropout_p=p)
    weights = (q @ k.transpose(-1, -2) / math.sqrt(8)).softmax(-1)
    torch.manual_seed(7)
    dropped = torch.cat(
        [F.dropout(weights[..., s : s + chunk].contiguous(), p) for s in range(0, N, chunk)], dim=-1
    )
    assert (dropped == 0).any()
    torch.testing.assert_close(out, dropped @ v, rtol=1e-5, atol=1e-5)


def test_dropout_masks_are_redrawn_identically_when_recomputing():
    q, k, v = random_qkv(requires_grad=True)
    grads = []
    for checkpoint_chunks in (False, True):
        torch.manual_seed(3)
        attend_chunked(q, sliced(k, v), N, 4, dropout_p=0.5, checkpoint_chunks=checkpoint_chunks).sum().backward()
        grads.append([t.grad.clone() for t in (q, k, v)])
        for t in (q, k, v):
            t.grad = None
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got, want)


def test_half_precision_keeps_dtype_and_accuracy():
    q, k, v = random_qkv()
    out = attend_chunked(q.bfloat16(), sliced(k.bfloat16(), v.bfloat16()), N, 4)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), naive_attention(q, k, v), rtol=0, atol=3e-2)


def test_bad_arguments():
    q, k, v = random_qkv()
    for bad in (0, -2, 2.5, True, "8", None):
        with pytest.raises(ValueError, match="chunk_size must be a positive integer, got"):
            attend_chunked(q, sliced(k, v), N, bad)
    with pytest.raises(ValueError, match=f"mask must have {N} keys"):
        attend_chunked(q, sliced(k, v), N, 4, torch.ones(2, N - 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="cross-attention"):
        chunked_cross_attention(MultiHeadAttention(8, 8, 8, 8, 2, 8, self_attention=True), q[0], q[0], 4)


# --- CrossAttentionBlock ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
@pytest.mark.parametrize("masked", [False, True])
def test_block_outputs_and_gradients_match_unchunked(chunk_size, masked):
    block = small_block().train()  # training mode with dropout 0: exercises the checkpointed path
    gen = torch.Generator().manual_seed(1)
    queries = torch.randn(2, 5, 16, generator=gen, requires_grad=True)
    inputs = torch.randn(2, N, 6, generator=gen, requires_grad=True)
    mask = awkward_mask() if masked else None
    grad_out = torch.randn(2, 5, 16, generator=gen)

    def run(chunk):
        block.input_chunk_size = chunk
        block.zero_grad()
        queries.grad = inputs.grad = None
        out, weights = block(queries, inputs, mask)
        assert weights is None
        out.backward(grad_out)
        grads = {name: p.grad.clone() for name, p in block.named_parameters()}
        return out.detach(), queries.grad.clone(), inputs.grad.clone(), grads

    full, chunked = run(None), run(chunk_size)
    for got, want in zip(chunked[:3], full[:3], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert chunked[3].keys() == full[3].keys()
    for name in full[3]:
        torch.testing.assert_close(chunked[3][name], full[3][name], rtol=1e-5, atol=1e-5, msg=name)


def test_block_falls_back_to_full_path_for_attention_weights():
    block = small_block().eval()
    queries, inputs = torch.randn(2, 5, 16), torch.randn(2, N, 6)
    with torch.no_grad():
        want, want_weights = block(queries, inputs, need_weights=True)
        block.input_chunk_size = 4
        got, weights = block(queries, inputs, need_weights=True)
    assert weights is not None and weights.shape == (2, 2, 5, N)
    torch.testing.assert_close(weights, want_weights)
    torch.testing.assert_close(got, want)


def test_block_chunking_with_dropout_trains():
    block = small_block(dropout=0.5).train()
    block.input_chunk_size = 4
    queries, inputs = torch.randn(2, 5, 16), torch.randn(2, N, 6, requires_grad=True)
    first, second = block(queries, inputs)[0], block(queries, inputs)[0]
    assert not torch.equal(first, second)  # dropout is active
    second.sum().backward()
    assert torch.isfinite(inputs.grad).all()
    block.eval()
    with torch.no_grad():
        block.input_chunk_size = None
        full = block(queries, inputs)[0]
        block.input_chunk_size = 4
        torch.testing.assert_close(block(queries, inputs)[0], full, rtol=1e-5, atol=1e-5)  # no dropout in eval


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "16"])
def test_block_rejects_bad_chunk_sizes(bad):
    block = small_block()
    with pytest.raises(ValueError, match=r"input_chunk_size must be a positive integer or None, got"):
        block.input_chunk_size = bad
    assert block.input_chunk_size is None


class _SizeRecorder(TorchDispatchMode):
    """Records the shape of every tensor an operator returns (forward, backward and recomputation)."""

    def __init__(self):
        super().__init__()
        self.shapes: list[tuple[str, tuple[int, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.shapes.append((str(func), tuple(t.shape)))
        return out


@pytest.mark.parametrize("train", [False, True])
def test_no_queries_by_inputs_intermediate_is_created(train):
    """With 200 inputs in chunks of 10, no operator may produce anything near the size of the full scores
    (2·2·5·200 = 4000), the normalised inputs (200·6 = 1200) or the keys/values (200·20 = 4000). Only the
    gradient w.r.t. the inputs themselves, (1, 200, 6), is inherently that large."""
    block = small_block().train(train)
    num_inputs, chunk = 200, 10
    queries = torch.randn(2, 5, 16, requires_grad=train)
    inputs = torch.randn(2, num_inputs, 6, requires_grad=train)
    bound = 2 * 5 * 16 * 4  # the largest legitimate intermediates: (2, 5, 16)-sized activations and weights

    def largest(chunk_size):
        block.input_chunk_size = chunk_size
        with torch.set_grad_enabled(train), _SizeRecorder() as recorder:
            out = block(queries, inputs)[0]
            if train:
                out.sum().backward()
        return max((math.prod(shape), name, shape) for name, shape in recorder.shapes if shape != inputs.shape)

    assert largest(None)[0] > 1000  # the recorder sees the full path's big intermediates...
    size, op, shape = largest(chunk)
    assert size <= bound, f"{op} produced {shape}"  # ...and none in the chunked one


def test_training_stores_only_the_softmax_state_per_chunk():
    """Tensors kept for the backward pass: on the full path they grow with every input (scores, keys, values,
    normalised inputs); chunked, each chunk is recomputed and only its online-softmax state, (B, H, M, Dv/H + 2),
    is kept."""
    block = small_block().train()
    queries = torch.randn(2, 5, 16, requires_grad=True)

    def saved_numel(num_inputs, chunk_size):
        block.input_chunk_size = chunk_size
        inputs = torch.randn(2, num_inputs, 6, requires_grad=True)
        saved = []

        def pack(t):
            saved.append(t.numel())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = block(queries, inputs)[0]
        out.sum().backward()  # and the recomputation works
        return sum(saved)

    state_per_chunk = 2 * 2 * 5 * (12 // 2 + 2)
    full_growth = saved_numel(400, None) - saved_numel(100, None)
    chunked_growth = saved_numel(400, 10) - saved_numel(100, 10)
    assert chunked_growth <= (400 - 100) // 10 * state_per_chunk
    assert full_growth > 5 * chunked_growth


# --- through the encoder and a task model -------------------------------------------------------------------------

TINY = EncoderConfig(num_latents=6, d_latents=16, num_self_attends_per_block=2, num_self_attention_heads=2,
                     num_cross_attention_heads=2, attention_dropout=0.0)


def test_encoder_latents_and_gradients_unchanged():
    torch.manual_seed(0)
    encoder = PerceiverEncoder(TINY, input_channels=6).train()
    inputs = torch.randn(2, N, 6)
    mask = awkward_mask()
    mask[1, 3] = True
    results = []
    for chunk in (None, 5):
        encoder.input_chunk_size = chunk
        encoder.zero_grad()
        latents = encoder(inputs, mask).latents
        latents.square().sum().backward()
        results.append((latents.detach(), [p.grad.clone() for p in encoder.parameters()]))
    assert encoder.input_chunk_size == 5
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-5, atol=1e-5)
    for got, want in zip(results[1][1], results[0][1], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_encoder_attention_weights_still_returned_when_chunked():
    torch.manual_seed(0)
    encoder = PerceiverEncoder(TINY, input_channels=6).eval()
    encoder.input_chunk_size = 4
    with torch.no_grad():
        out = encoder(torch.randn(1, N, 6), output_attentions=True)
    assert out.cross_attentions[0].shape == (1, 2, 6, N)


@pytest.fixture(scope="module")
def mlm() -> MaskedLanguageModel:
    torch.manual_seed(0)
    return MaskedLanguageModel(MaskedLanguageModelConfig(d_model=16, max_position_embeddings=40, encoder=TINY))


def test_task_model_outputs_loss_and_gradients_unchanged(mlm):
    ids = torch.randint(6, 262, (2, 31), generator=torch.Generator().manual_seed(0))
    attention_mask = torch.ones(2, 31, dtype=torch.long)
    attention_mask[1, 20:] = 0
    labels = ids.clone()
    mlm.train()
    runs = []
    try:
        for chunk in (None, 8, 30, 31):
            assert mlm.perceiver.set_input_chunk_size(chunk) is mlm.perceiver
            mlm.zero_grad()
            out = mlm(ids, attention_mask=attention_mask, labels=labels)
            out.loss.backward()
            runs.append((out.logits.detach(), out.loss.detach(), [p.grad.clone() for p in mlm.parameters()]))
    finally:
        mlm.perceiver.set_input_chunk_size(None)
    for logits, loss, grads in runs[1:]:
        torch.testing.assert_close(logits, runs[0][0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(loss, runs[0][1], rtol=1e-5, atol=1e-5)
        for got, want in zip(grads, runs[0][2], strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bad", [0, -8, 1.5, "8", False])
def test_set_input_chunk_size_rejects_bad_values(mlm, bad):
    mlm.perceiver.set_input_chunk_size(8)
    try:
        with pytest.raises(ValueError, match="input_chunk_size must be a positive integer or None"):
            mlm.perceiver.set_input_chunk_size(bad)
        assert mlm.perceiver.encoder.input_chunk_size == 8  # unchanged
    finally:
        mlm.perceiver.set_input_chunk_size(None)


def test_reference_path_does_not_chunk():
    """The global switch turns chunking off too: the encoder then runs the reference block (same latents)."""
    torch.manual_seed(0)
    encoder = PerceiverEncoder(TINY, input_channels=6).eval()
    encoder.input_chunk_size = 4
    inputs = torch.randn(1, N, 6)
    with torch.no_grad():
        chunked = encoder(inputs).latents
        with reference_path():
            reference = encoder(inputs).latents
    torch.testing.assert_close(chunked, reference, rtol=1e-5, atol=1e-5)
