"""Perceiver AR against independent oracles: a causal Transformer written with plain torch ops (the model with no
prefix), causality as a closed-form property, the fast and reference attention paths, and cached generation
against recomputing every step."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from perceiverkit import accel
from perceiverkit.accel.kernels import set_attention_kernel
from perceiverkit.tasks.causal_lm import (
    PerceiverAR,
    PerceiverARConfig,
    choose_next_token,
    next_token_probabilities,
)
from perceiverkit.tasks.registry import create_model, get_task


def tiny_config(**overrides: object) -> PerceiverARConfig:
    base = PerceiverARConfig(d_model=32, num_latents=6, num_self_attention_layers=2, num_heads=2,
                             num_cross_attention_heads=4, qk_channels=16, widening_factor=2,
                             max_position_embeddings=64)
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def tiny_model(seed: int = 0, **overrides: object) -> PerceiverAR:
    torch.manual_seed(seed)
    model = PerceiverAR(tiny_config(**overrides)).eval()
    with torch.no_grad():  # non-trivial norms and biases, so that the oracle checks every parameter
        for name, parameter in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model


# --- the oracle: a causal pre-LayerNorm Transformer in plain torch ops ------------------------------------------

def rotate(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """Pair (x_i, x_{i+D/2}) as a complex number, turned by exp(j·m·base^(-2i/D))."""
    half = x.shape[-1] // 2
    theta = base ** (-2 * torch.arange(half, dtype=torch.float64) / x.shape[-1])
    z = torch.complex(x[..., :half].double(), x[..., half:].double())
    z = z * torch.polar(torch.ones_like(theta), positions.double()[:, None] * theta)
    return torch.cat([z.real, z.imag], dim=-1).float()


def oracle_attention(q_in, kv_in, w, prefix, heads, qk, positions, rotary_base):  # type: ignore[no-untyped-def]
    """Causal multi-head attention with an explicit softmax; ``w`` the module's state dict under ``prefix``."""
    if f"{prefix}.qkv_proj.weight" in w:
        projected = F.linear(q_in, w[f"{prefix}.qkv_proj.weight"], w[f"{prefix}.qkv_proj.bias"])
        q, k, v = projected[..., :qk], projected[..., qk:2 * qk], projected[..., 2 * qk:]
    else:
        q = F.linear(q_in, w[f"{prefix}.q_proj.weight"], w[f"{prefix}.q_proj.bias"])
        kv = F.linear(kv_in, w[f"{prefix}.kv_proj.weight"], w[f"{prefix}.kv_proj.bias"])
        k, v = kv[..., :qk], kv[..., qk:]
    batch, length, _ = q.shape
    q, k, v = (t.reshape(batch, length, heads, -1).transpose(1, 2) for t in (q, k, v))  # (B, H, L, D)
    if rotary_base is not None:
        q, k = rotate(q, positions, rotary_base), rotate(k, positions, rotary_base)
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5  # (B, H, L, L)
    future = torch.ones(length, length, dtype=torch.bool).triu(1)
    weights = scores.masked_fill(future, float("-inf")).softmax(-1)
    out = (weights @ v).transpose(1, 2).reshape(batch, length, -1)
    return F.linear(out, w[f"{prefix}.out_proj.weight"], w[f"{prefix}.out_proj.bias"])


def oracle_logits(model: PerceiverAR, input_ids: torch.Tensor) -> torch.Tensor:
    """The model with ``num_latents`` = the input's length is a causal Transformer over the whole input."""
    c, w = model.config, model.state_dict()
    qk = c.query_key_channels
    rotary_base = c.rotary_base if c.position_encoding == "rotary" else None
    positions = torch.arange(input_ids.shape[1])

    def norm(x, name):  # type: ignore[no-untyped-def]
        return F.layer_norm(x, (c.d_model,), w[f"{name}.weight"], w[f"{name}.bias"])

    def mlp(x, prefix):  # type: ignore[no-untyped-def]
        hidden = F.gelu(F.linear(x, w[f"{prefix}.fc1.weight"], w[f"{prefix}.fc1.bias"]))
        return F.linear(hidden, w[f"{prefix}.fc2.weight"], w[f"{prefix}.fc2.bias"])

    x = w["token_embedding.weight"][input_ids]
    if rotary_base is None:
        x = x + w["position_embedding.weight"][positions]
    x = x + oracle_attention(norm(x, "cross_attention.norm_q"), norm(x, "cross_attention.norm_kv"), w,
                             "cross_attention.attention", c.num_cross_attention_heads, qk, positions, rotary_base)
    x = x + mlp(norm(x, "cross_attention.norm_mlp"), "cross_attention.mlp")
    for i in range(c.num_self_attention_layers):
        p = f"self_attention.{i}"
        x = x + oracle_attention(norm(x, f"{p}.norm"), None, w, f"{p}.attention", c.num_heads, qk, positions,
                                 rotary_base)
        x = x + mlp(norm(x, f"{p}.norm_mlp"), f"{p}.mlp")
    x = norm(x, "final_norm")
    if c.tie_word_embeddings:
        return x @ w["token_embedding.weight"].t()
    return F.linear(x, w["lm_head.weight"], w["lm_head.bias"])


@pytest.mark.parametrize("position_encoding", ["rotary", "learned"])
@pytest.mark.parametrize("tied", [True, False])
def test_without_a_prefix_it_is_a_causal_transformer(position_encoding: str, tied: bool) -> None:
    model = tiny_model(position_encoding=position_encoding, tie_word_embeddings=tied)
    ids = torch.randint(0, 262, (2, 9))
    with torch.no_grad():
        logits = model(ids, num_latents=9).logits
    assert logits.shape == (2, 9, 262)
    torch.testing.assert_close(logits, oracle_logits(model, ids), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("position_encoding", ["rotary", "learned"])
def test_latents_are_the_last_positions_of_the_causal_transformer_for_one_layer_stack(position_encoding: str
                                                                                     ) -> None:
    # With no self-attention layer, latent i is the cross-attention output at its position, which sees the
    # same keys whether or not the earlier positions are latents: the last M rows of the prefix-free model.
    model = tiny_model(position_encoding=position_encoding, num_self_attention_layers=1)
    model.self_attention = torch.nn.ModuleList()
    ids = torch.randint(0, 262, (2, 11))
    with torch.no_grad():
        full = model(ids, num_latents=11).logits
        windowed = model(ids, num_latents=4).logits
    torch.testing.assert_close(windowed, full[:, -4:], atol=1e-5, rtol=1e-5)


def test_a_future_token_never_changes_earlier_logits() -> None:
    model = tiny_model()
    ids = torch.randint(6, 262, (1, 14))
    with torch.no_grad():
        before = model(ids).logits  # latents at positions 8..13
        for position in range(8, 14):
            changed = ids.clone()
            changed[0, position] = 5 if ids[0, position] != 5 else 6
            after = model(changed).logits
            latent = position - 8
            torch.testing.assert_close(after[:, :latent], before[:, :latent], atol=0, rtol=0)
            assert not torch.allclose(after[:, latent:], before[:, latent:])
        changed = ids.clone()
        changed[0, 0] = 5  # a prefix token: every latent sees it
        assert (model(changed).logits - before).abs().amax(-1).min() > 0


@pytest.mark.parametrize("position_encoding", ["rotary", "learned"])
def test_fast_and_reference_paths_agree(position_encoding: str) -> None:
    # qk_channels (16) differs from the value width (32): on the CPU the fast path takes the explicit softmax.
    model = tiny_model(position_encoding=position_encoding)
    ids = torch.randint(0, 262, (3, 20))
    with torch.no_grad():
        fast = model(ids).logits
        with accel.reference_path():
            reference = model(ids).logits
        set_attention_kernel(model, "explicit")
        explicit = model(ids).logits
        set_attention_kernel(model, "fused")
        fused = model(ids).logits
    for other in (reference, explicit, fused):
        torch.testing.assert_close(fast, other, atol=1e-5, rtol=1e-5)


def test_loss_is_next_token_cross_entropy_on_the_latents() -> None:
    model = tiny_model()
    ids = torch.randint(0, 262, (2, 15))
    labels = ids.clone()
    labels[0, 12] = -100
    out = model(ids, labels=labels)
    # Latents at positions 9..14; latent at p predicts labels[p + 1]; the last has no target.
    expected = F.cross_entropy(out.logits[:, :-1].reshape(-1, 262), labels[:, 10:].reshape(-1), ignore_index=-100)
    torch.testing.assert_close(out.loss, expected)
    out.loss.backward()
    assert model.token_embedding.weight.grad is not None


def test_prefix_dropout_only_in_training() -> None:
    model = tiny_model(prefix_dropout=0.5)
    ids = torch.randint(0, 262, (2, 30))
    with torch.no_grad():
        evaluated = model(ids).logits
        plain = tiny_model(prefix_dropout=0.0)
        torch.testing.assert_close(evaluated, plain(ids).logits)
        model.train()
        model.cross_attention.attention.dropout = 0.0
        torch.manual_seed(1)
        dropped = model(ids).logits
    assert dropped.shape == evaluated.shape and torch.isfinite(dropped).all()
    assert not torch.allclose(dropped, evaluated)
    # Half of the 24 prefix positions kept, each batch element its own draw, in order, with every latent position.
    context, positions = model.drop_prefix(torch.randn(2, 30, 32), torch.arange(30), 24)
    assert context.shape == (2, 18, 32) and positions.shape == (2, 18)
    assert (positions[:, :12].diff(dim=-1) > 0).all() and (positions[:, 12:] == torch.arange(24, 30)).all()


def test_activation_checkpointing_gives_the_same_loss_and_gradients() -> None:
    model = tiny_model().train()
    ids = torch.randint(0, 262, (2, 16))
    grads = []
    for checkpointing in (False, True):
        model.gradient_checkpointing = checkpointing
        model.zero_grad()
        loss = model(ids, labels=ids).loss
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for a, b in zip(grads[0][1], grads[1][1], strict=True):
        torch.testing.assert_close(a, b)


# --- generation ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("position_encoding", ["rotary", "learned"])
@pytest.mark.parametrize("prompt_length", [3, 6, 10])  # shorter than, equal to and longer than num_latents (6)
def test_cached_generation_equals_recomputing_every_step(position_encoding: str, prompt_length: int) -> None:
    model = tiny_model(position_encoding=position_encoding)
    prompt = torch.randint(0, 262, (2, prompt_length))
    cached = list(model.iter_generate(prompt, 12))
    uncached = list(model.iter_generate(prompt, 12, use_cache=False))
    for a, b in zip(cached, uncached, strict=True):
        torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=1e-5)
        assert torch.equal(a.tokens, b.tokens)
    generated = model.generate(prompt, 12)
    assert generated.shape == (2, prompt_length + 12)
    assert torch.equal(generated[:, prompt_length:], torch.stack([s.tokens for s in cached], dim=1))
    # The first step's logits are the forward pass's last logits.
    with torch.no_grad():
        last = model(prompt, num_latents=min(6, prompt_length)).logits[:, -1]
    torch.testing.assert_close(cached[0].logits, last, atol=1e-5, rtol=1e-5)


def test_sampling_settings_have_their_closed_forms() -> None:
    torch.manual_seed(0)
    logits = torch.randn(4, 50) * 3
    greedy = logits.argmax(-1)
    assert torch.equal(choose_next_token(logits, do_sample=True, top_k=1), greedy)
    assert torch.equal(choose_next_token(logits, do_sample=True, top_p=1e-6), greedy)
    for temperature in (0.5, 1.0, 2.0):
        torch.testing.assert_close(next_token_probabilities(logits, temperature), (logits / temperature).softmax(-1))
    top5 = next_token_probabilities(logits, top_k=5)
    assert ((top5 > 0).sum(-1) == 5).all()
    kept = logits.topk(5).indices
    torch.testing.assert_close(top5.gather(-1, kept), logits.gather(-1, kept).softmax(-1))
    nucleus = next_token_probabilities(logits, top_p=0.7)
    probs = logits.softmax(-1)
    for row in range(4):
        ordered = probs[row].sort(descending=True).values
        smallest = int((ordered.cumsum(0) < 0.7).sum()) + 1  # fewest most likely tokens reaching 0.7
        assert int((nucleus[row] > 0).sum()) == smallest
    torch.testing.assert_close(nucleus.sum(-1), torch.ones(4))
    draws = [choose_next_token(logits, True, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(draws[0], draws[1])


def test_sampled_generation_is_reproducible_and_top_k_1_is_greedy() -> None:
    model = tiny_model()
    prompt = torch.randint(0, 262, (1, 8))
    greedy = model.generate(prompt, 10)
    assert torch.equal(model.generate(prompt, 10, do_sample=True, top_k=1), greedy)
    a = model.generate(prompt, 10, do_sample=True, generator=torch.Generator().manual_seed(7))
    b = model.generate(prompt, 10, do_sample=True, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


@pytest.mark.parametrize(("call", "message"), [
    (lambda m: m(torch.randint(0, 262, (1, 65))), "longer than the position table"),
    (lambda m: m.generate(torch.randint(0, 262, (1, 60)), 10), "longer than the position table"),
    (lambda m: m(torch.randint(0, 262, (1, 4))), r"num_latents \(6\) is larger than the input \(4 tokens\)"),
    (lambda m: m.generate(torch.zeros(1, 0, dtype=torch.long), 5), "input_ids is empty"),
    (lambda m: m(torch.full((1, 8), 262)), r"must be in \[0, 262\).*got 262"),
    (lambda m: m.generate(torch.full((1, 8), -1), 3), r"must be in \[0, 262\).*got -1"),
    (lambda m: m.generate(torch.ones(1, 8, dtype=torch.long), 3, do_sample=True, temperature=0.0), "temperature"),
    (lambda m: m.generate(torch.ones(1, 8, dtype=torch.long), 3, do_sample=True, top_p=1.5), "top_p"),
    (lambda m: m.generate(torch.ones(1, 8, dtype=torch.long), 3, do_sample=True, top_k=0), "top_k"),
])
def test_bad_input_is_one_line(call, message) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model(position_encoding="learned")
    with pytest.raises(ValueError, match=message) as info:
        call(model)
    assert "\n" not in str(info.value)


def test_registered_with_presets_and_saved_and_loaded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert get_task("perceiver-ar").model_class is PerceiverAR
    assert get_task("text-generation").name == "causal-lm"
    model = create_model("perceiver-ar-tiny").eval()
    ids = torch.randint(0, 262, (1, 40))
    model.save_pretrained(tmp_path)
    loaded = PerceiverAR.from_pretrained(tmp_path).eval()
    assert loaded.config == model.config
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits)
