"""Device and dtype names (``perceiverkit.devices``) and what ``from_pretrained`` does with them."""

from __future__ import annotations

import pytest
import torch

import perceiverkit.checkpoints as checkpoints
from perceiverkit import EncoderConfig, MaskedLanguageModel, MaskedLanguageModelConfig, from_pretrained
from perceiverkit.devices import DeviceError, resolve_device, resolve_dtype

TINY = EncoderConfig(num_latents=4, d_latents=16, num_self_attends_per_block=1, num_self_attention_heads=2,
                     num_cross_attention_heads=1)


@pytest.fixture
def saved_mlm(tmp_path):
    torch.manual_seed(0)
    MaskedLanguageModel(MaskedLanguageModelConfig(d_model=16, max_position_embeddings=16, encoder=TINY,
                                                  decoder_num_heads=1, decoder_qk_channels=8)).save_pretrained(tmp_path)
    return tmp_path


def _no_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_auto_is_the_cpu_without_an_accelerator(monkeypatch):
    _no_accelerator(monkeypatch)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(None) is None


def test_auto_prefers_cuda_then_mps(monkeypatch):
    _no_accelerator(monkeypatch)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_an_absent_accelerator_or_an_unknown_name_is_one_line(monkeypatch):
    _no_accelerator(monkeypatch)
    for device, message in (("cuda", "device 'cuda' is not available: this machine has no CUDA"),
                            ("cuda:0", "device 'cuda:0' is not available: this machine has no CUDA"),
                            ("mps", "device 'mps' is not available: this machine has no MPS"),
                            ("gpu", "unknown device 'gpu'; expected one of ['auto', 'cpu', 'cuda', 'mps']"),
                            ("auto:1", "unknown device 'auto:1'; expected one of")):
        with pytest.raises(DeviceError) as error:
            resolve_device(device)
        assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_dtype_names():
    assert resolve_dtype("bfloat16") is torch.bfloat16 and resolve_dtype("torch.float16") is torch.float16
    assert resolve_dtype(torch.float32) is torch.float32 and resolve_dtype(None) is None
    for bad in ("float8", "int8", torch.int64, 16):
        with pytest.raises(DeviceError, match=r"expected one of|one of \['float32'"):
            resolve_dtype(bad)  # type: ignore[arg-type]


def test_from_pretrained_takes_dtype_strings_and_exposes_device_and_dtype(saved_mlm):
    model = from_pretrained(saved_mlm, dtype="bfloat16", device="cpu")
    assert model.dtype == torch.bfloat16 and model.device == torch.device("cpu")
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    full = from_pretrained(saved_mlm)
    assert full.dtype == torch.float32
    ids = torch.tensor([[4, 10, 3, 12, 5]])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits.float(), full(ids).logits, atol=0.05, rtol=0.05)
    with pytest.raises(DeviceError, match=r"unknown dtype 'half-ish'; expected one of \['float32', 'bfloat16', "
                                          r"'float16'\]"):
        from_pretrained(saved_mlm, dtype="half-ish")


def test_from_pretrained_hands_token_and_revision_to_the_hub(saved_mlm, monkeypatch):
    seen = {}

    def resolve(source, **kwargs):
        seen.update(kwargs)
        return saved_mlm

    monkeypatch.setattr(checkpoints, "resolve_source", resolve)
    from_pretrained("someone/private-model", token="hf_secret", revision="v1")
    assert seen["token"] == "hf_secret" and seen["revision"] == "v1"
