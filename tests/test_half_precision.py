"""Models cast to half precision (``model.to(torch.bfloat16)``) take float32 inputs as they come and agree with
Transformers' float32 models to half-precision rounding."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch

from perceiverkit import EncoderConfig, OpticalFlow, OpticalFlowConfig
from perceiverkit.accel import set_attention_kernel
from perceiverkit.benchmark import WORKLOADS, relative_error
from perceiverkit.benchmark.runner import _build_transformers
from perceiverkit.checkpoints import from_pretrained

INFERENCE = [name for name, w in WORKLOADS.items() if w.mode == "infer"]


def _first(output):
    return output if isinstance(output, torch.Tensor) else next(iter(output.values()))


#: Largest relative error against float32: fp16 keeps 11 significant bits, bf16 8 (8× coarser rounding; the
#: random flow models, whose outputs are small differences, land near 2 % in bf16 and 0.3 % in fp16).
BOUND = {torch.float16: 1e-2, torch.bfloat16: 3e-2}


@pytest.mark.parametrize("dtype", list(BOUND), ids=["fp16", "bf16"])
@pytest.mark.parametrize("name", INFERENCE)
def test_half_model_takes_float32_inputs_and_agrees_with_transformers_fp32(name, dtype):
    case = WORKLOADS[name].case("tiny", None)
    inputs = case.make_inputs(torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        theirs = _build_transformers(case, 0, Path(tmp)).eval()
        ours = from_pretrained(tmp).eval().to(dtype)
    with torch.no_grad():
        reference = _first(case.run_theirs(theirs, inputs, ours.config)).float()
        output = _first(case.run_ours(ours, inputs, ours.config))
    if not name.startswith("flow-436"):  # the benchmark's tile stitching writes into a float32 frame
        assert output.dtype == dtype
    # A float32 input reaching a half-precision weight would raise; the lower bound shows half precision ran.
    assert 1e-5 < relative_error(output.float(), reference) < BOUND[dtype], name


def test_fp16_flow_model_with_a_cost_volume_matches_its_float32_self():
    config = OpticalFlowConfig(train_size=(12, 16), num_bands=4, patch_features=8, tile_overlap=4,
                               cost_volume_radius=2, cost_volume_stride=1,
                               encoder=EncoderConfig(num_latents=4, d_latents=16, num_self_attends_per_block=1,
                                                     num_self_attention_heads=2, num_cross_attention_heads=1,
                                                     attention_dropout=0.0))
    torch.manual_seed(0)
    model = OpticalFlow(config).eval()
    frames = torch.rand(2, 2, 3, 12, 16) * 255
    with torch.no_grad():
        full = model(frames).flow
        half = model.to(torch.float16)(frames).flow  # the costs themselves are computed in float32
    assert half.dtype == torch.float16
    assert 1e-5 < relative_error(half.float(), full) < BOUND[torch.float16]


def test_integer_inputs_are_not_cast():
    case = WORKLOADS["mlm-infer"].case("tiny", None)
    ids = case.make_inputs(torch.Generator().manual_seed(0))["input_ids"]
    with tempfile.TemporaryDirectory() as tmp:
        _build_transformers(case, 0, Path(tmp))
        ours = from_pretrained(tmp).eval()
    with torch.no_grad():
        full = ours(ids).logits
        half = ours.to(torch.bfloat16)(ids).logits  # token ids must stay integers to index the embedding
    assert 1e-5 < relative_error(half.float(), full) < BOUND[torch.bfloat16]


def _mlm_train_models():
    case = WORKLOADS["mlm-train"].case("tiny", None)
    inputs = case.make_inputs(torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        theirs = _build_transformers(case, 0, Path(tmp)).eval()
        ours = from_pretrained(tmp).eval()
    return case, inputs, theirs, ours


def _loss_and_grads(case, model, inputs, config):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = case.run_ours(model, inputs, config)
    loss.backward()
    return loss.detach().float(), {n: p.grad.float().clone() for n, p in model.named_parameters() if p.grad is not None}


def test_half_precision_latents_carry_the_autocast_dtype_and_agree_with_transformers():
    case, inputs, theirs, ours = _mlm_train_models()
    stack_dtypes = []
    ours.perceiver.encoder.self_attention[0].register_forward_pre_hook(lambda _, args: stack_dtypes.append(args[0].dtype))
    with torch.no_grad():
        reference = case.run_theirs(theirs, inputs, ours.config).float()  # Transformers in float32

    def encoded_latents():
        with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
            return ours.perceiver.encode(inputs["input_ids"]).latents

    loss_fp32_stream, grads_fp32_stream = _loss_and_grads(case, ours, inputs, ours.config)
    latents_fp32_stream = encoded_latents()
    ours.perceiver.encoder.half_precision_latents = True
    loss_half_stream, grads_half_stream = _loss_and_grads(case, ours, inputs, ours.config)
    latents_half_stream = encoded_latents()
    assert stack_dtypes == [torch.float32, torch.float32, torch.bfloat16, torch.bfloat16]
    assert relative_error(loss_half_stream, reference) < BOUND[torch.bfloat16]
    # The stream really was rounded to bf16. (Compare the latents, not the loss: this tiny model's bf16 logits
    # can round both streams to the same loss.)
    assert not torch.equal(latents_half_stream, latents_fp32_stream)
    assert latents_half_stream.dtype == torch.float32  # handed to the decoder in the stream's own dtype
    for name, grad in grads_fp32_stream.items():
        assert relative_error(grads_half_stream[name], grad) < 5e-2, name


def test_half_precision_latents_change_nothing_without_autocast():
    case, inputs, _, ours = _mlm_train_models()
    with torch.no_grad():
        before = case.run_ours(ours, inputs, ours.config)
        ours.perceiver.encoder.half_precision_latents = True
        after = case.run_ours(ours, inputs, ours.config)
    assert torch.equal(before, after)


def test_half_precision_latents_compile_without_graph_breaks():
    case, inputs, _, ours = _mlm_train_models()
    ours.perceiver.encoder.half_precision_latents = True
    # Compiled graphs keep SDPA where eager CPU code may take the explicit path (unequal head widths); pin the
    # kernel so that both run the same bf16 computation.
    set_attention_kernel(ours, "fused")
    expected, _ = _loss_and_grads(case, ours, inputs, ours.config)
    compiled = torch.compile(ours, fullgraph=True, backend="aot_eager")
    loss, _ = _loss_and_grads(case, compiled, inputs, ours.config)
    assert torch.allclose(loss, expected, rtol=1e-6)
