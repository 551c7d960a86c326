"""FSDP2 sharding of task models, in a one-process gloo group (the multi-process runs: test_distributed.py)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.distributed as dist

from perceiverkit.tasks import PRESETS, TASKS, preset_config
from perceiverkit.layers.blocks import CrossAttentionBlock, SelfAttentionBlock
from perceiverkit import ImageClassifier
from perceiverkit.train.sharding import full_state_dict, gather_dtype, is_sharded, shard_model, unsharded_class


@pytest.fixture
def mesh(tmp_path):
    from torch.distributed.device_mesh import init_device_mesh

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        yield init_device_mesh("cpu", (1,))
    finally:
        dist.destroy_process_group()


def _tiny_classifier() -> torch.nn.Module:
    config = preset_config("vision-perceiver-fourier")
    config.encoder.num_latents, config.encoder.d_latents = 8, 32
    config.encoder.num_self_attends_per_block, config.encoder.num_blocks = 2, 2  # weight-shared repeats
    config.encoder.num_self_attention_heads, config.encoder.num_cross_attention_heads = 2, 1
    config.image.position.max_resolution = [16, 16]
    config.image.position.num_bands = 4
    config.num_labels = 5
    config.encoder.attention_dropout = 0.0  # deterministic losses
    return TASKS[PRESETS["vision-perceiver-fourier"].task](config)


def test_every_attention_block_is_its_own_unit_and_weights_round_trip(mesh):
    torch.manual_seed(0)
    model = _tiny_classifier()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    shard_model(model, mesh)
    blocks = [m for m in model.modules() if isinstance(m, (CrossAttentionBlock, SelfAttentionBlock))]
    assert len(blocks) == 1 + 2 + 1  # encoder cross-attention, 2 self-attention layers, decoder
    assert is_sharded(model) and all(is_sharded(b) for b in blocks)
    assert type(model).__name__ == "FSDPImageClassifier" and unsharded_class(model) is ImageClassifier
    assert shard_model(model, mesh) is model  # applying it twice is harmless
    after = full_state_dict(model)
    assert after.keys() == before.keys()
    for name, tensor in before.items():
        assert not isinstance(after[name], torch.distributed.tensor.DTensor)
        torch.testing.assert_close(after[name], tensor, rtol=0, atol=0, msg=name)


def test_sharded_model_computes_the_same_loss_and_gradients(mesh):
    torch.manual_seed(0)
    plain = _tiny_classifier()
    sharded = shard_model(copy.deepcopy(plain), mesh)
    images, labels = torch.randn(3, 3, 16, 16), torch.tensor([0, 4, 2])
    plain_loss = plain(images, labels=labels).loss
    sharded_loss = sharded(images, labels=labels).loss
    torch.testing.assert_close(sharded_loss, plain_loss)
    plain_loss.backward()
    sharded_loss.backward()
    grads = {n: p.grad.full_tensor() for n, p in sharded.named_parameters()}
    for name, p in plain.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, msg=name)


def test_bf16_gathered_weights_compute_what_a_bf16_copy_computes(mesh):
    torch.manual_seed(0)
    plain = _tiny_classifier()
    sharded = shard_model(copy.deepcopy(plain), mesh, param_dtype=gather_dtype("bf16-mixed"))
    oracle = copy.deepcopy(plain).to(torch.bfloat16)  # what FSDP's policy should compute with
    seen: list[torch.dtype] = []
    block = next(m for m in sharded.modules() if isinstance(m, SelfAttentionBlock))
    block.register_forward_pre_hook(lambda module, args: seen.append(next(module.parameters()).dtype))
    images, labels = torch.randn(3, 3, 16, 16), torch.tensor([0, 4, 2])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sharded_loss = sharded(images, labels=labels).loss
        oracle_loss = oracle(images.bfloat16(), labels=labels).loss
    assert seen and set(seen) == {torch.bfloat16}
    torch.testing.assert_close(sharded_loss.float(), oracle_loss.float())
    sharded_loss.backward()
    oracle_loss.backward()
    # The stored slices and their gradients stay float32 (reduced in float32); the values are the bf16 copy's.
    for (name, p), (_, q) in zip(sharded.named_parameters(), oracle.named_parameters()):
        assert p.dtype == torch.float32 and p.grad.dtype == torch.float32, name
        torch.testing.assert_close(p.grad.full_tensor(), q.grad.float(), rtol=2e-2, atol=1e-3, msg=name)
    # The float32 weights themselves were not rounded.
    for name, value in full_state_dict(sharded).items():
        torch.testing.assert_close(value, plain.state_dict()[name], rtol=0, atol=0, msg=name)


def test_gather_dtype_follows_the_trainer_precision():
    assert gather_dtype("bf16-mixed") is torch.bfloat16
    assert gather_dtype("32-true") is None and gather_dtype("16-mixed") is None and gather_dtype(None) is None
    with pytest.raises(ValueError, match="floating-point"):
        shard_model(_tiny_classifier(), None, param_dtype=torch.int8)


def test_unsharded_model_state_dict_passes_through():
    model = _tiny_classifier()
    assert not is_sharded(model)
    assert full_state_dict(model).keys() == model.state_dict().keys()



@pytest.mark.parametrize("precision, expected", [("bf16-mixed", torch.bfloat16), ("32-true", None)])
def test_training_module_shards_with_the_trainers_precision(monkeypatch, precision, expected):
    from types import SimpleNamespace

    from perceiverkit.train import modules
    from perceiverkit.train.config import OptimConfig

    calls = []
    monkeypatch.setattr(modules, "shard_model", lambda model, mesh, dtype=None: calls.append((model, mesh, dtype)))
    module = modules.ClassificationModule(_tiny_classifier(), OptimConfig(), total_steps=1)
    module._trainer = SimpleNamespace(precision=precision)
    module._device_mesh = {"data_parallel": "mesh"}
    module.configure_model()
    assert calls == [(module.model, "mesh", expected)]


def test_fused_adamw_steps_sharded_slices_as_it_steps_the_plain_model(mesh):
    from perceiverkit.train.optim import adamw

    torch.manual_seed(0)
    plain = _tiny_classifier()
    sharded = shard_model(copy.deepcopy(plain), mesh)
    initial = copy.deepcopy(plain.state_dict())
    images, labels = torch.randn(3, 3, 16, 16), torch.tensor([0, 4, 2])
    for model in (plain, sharded):
        optimizer = adamw(model.parameters(), lr=1e-2)
        assert optimizer.defaults["fused"]  # CPU tensors and CPU DTensors alike
        for _ in range(3):
            optimizer.zero_grad()
            model(images, labels=labels).loss.backward()
            optimizer.step()
    stepped = full_state_dict(sharded)
    assert max(float((value - initial[name]).abs().max()) for name, value in plain.state_dict().items()) > 1e-3
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(stepped[name], value, rtol=1e-6, atol=1e-7, msg=name)
