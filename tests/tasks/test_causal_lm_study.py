"""``examples/perceiver_ar_study.py``: training windows stay in the training text, every latent is scored against
the byte after it, and the compressor baselines are the compressors' own sizes."""

from __future__ import annotations

import importlib.util
import lzma
import math
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from perceiverkit.model import PerceiverOutput
from perceiverkit.tasks.causal_lm import PerceiverAR, PerceiverARConfig

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "perceiver_ar_study.py"


@pytest.fixture(scope="module")
def study() -> ModuleType:
    spec = importlib.util.spec_from_file_location("perceiver_ar_study", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_training_windows_and_their_targets_never_touch_the_held_out_region(study: ModuleType) -> None:
    corpus = study.Corpus(bytes(range(256)) * 40, val_start=4000, val_end=5000)
    ends = study.window_ends(corpus, 500, 400, torch.Generator().manual_seed(0))
    for end in ends:
        window = range(end - 500, end + 1)  # the longest window and the byte its last latent predicts
        assert window.start >= 0 and window.stop <= len(corpus.data)
        assert window.stop <= corpus.val_start or window.start >= corpus.val_end
    assert any(end < corpus.val_start for end in ends) and any(end > corpus.val_end for end in ends)
    # The same generator state gives the same ends: every context length is trained on the same scored bytes.
    assert ends == study.window_ends(corpus, 500, 400, torch.Generator().manual_seed(0))


class Successor(torch.nn.Module):
    """A stand-in model that knows the data's rule (each byte is the previous one + 1 mod 256): confident logits
    for the successor of every latent position's byte."""

    def forward(self, input_ids: torch.Tensor, num_latents: int) -> PerceiverOutput:
        offset = study_offset()
        latest = input_ids[:, -num_latents:] - offset  # (B, M) bytes at the latent positions
        following = (latest + 1) % 256 + offset
        logits = torch.full((*latest.shape, 262), -30.0).scatter(-1, following[..., None], 30.0)
        return PerceiverOutput(logits=logits)


def study_offset() -> int:
    from perceiverkit.tokenizer import ByteTokenizer

    return ByteTokenizer.num_special_tokens


def test_held_out_score_pairs_each_latent_with_the_next_byte(study: ModuleType) -> None:
    corpus = study.Corpus(bytes(range(256)) * 40, val_start=2000, val_end=8000)
    # A model that predicts the true next byte costs ~0 bits; scoring against any other byte would cost ~87 bits.
    assert study.held_out_bits_per_byte(Successor(), corpus, 512, 32, 2600, 2048) < 1e-6
    # A model whose logits are all zero predicts uniformly over the 262 ids: log2(262) bits per byte.
    model = PerceiverAR(PerceiverARConfig(d_model=32, num_latents=32, num_self_attention_layers=1, num_heads=2,
                                          num_cross_attention_heads=2))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
    bits = study.held_out_bits_per_byte(model, corpus, 512, 32, 2600, 1024)
    assert bits == pytest.approx(math.log2(262), abs=1e-5)


def test_batches_score_the_byte_after_each_latent(study: ModuleType) -> None:
    data = bytes(range(256)) * 8
    inputs, targets = study.batch_at(data, [700, 1300], 300, 16)
    assert inputs.shape == (2, 300) and targets.shape == (2, 16)
    offset = study_offset()
    assert inputs[0, -1] - offset == data[699] and targets[0, -1] - offset == data[700]
    assert torch.equal((inputs[:, -16:] - offset + 1) % 256, targets - offset)


@pytest.mark.skipif(shutil.which("xz") is None or shutil.which("zstd") is None,
                    reason="xz and zstd are not installed (apt-get install xz-utils zstd)")
def test_compressor_baselines_are_the_compressors_sizes(study: ModuleType) -> None:
    generator = torch.Generator().manual_seed(0)
    words = [bytes(torch.randint(97, 123, (int(n),), generator=generator).tolist())
             for n in torch.randint(2, 9, (400,), generator=generator)]
    text = b" ".join(words[int(i)] for i in torch.randint(0, 400, (30000,), generator=generator))
    # The held-out text E repeats a piece of the training text: after the training text it is nearly free.
    held_out = text[5000:25000]
    corpus = study.Corpus(text + held_out, val_start=len(text), val_end=len(text) + len(held_out))
    first, count = len(text) + 4000, 16000
    figures = study.compressor_baselines(corpus, first, count)
    evaluated, seen = corpus.data[first:first + count], corpus.train_bytes + corpus.data[len(text):first]
    # Python's lzma (liblzma, the same format) at preset 9 agrees with the xz command to a few header bytes.
    alone = 8 * len(lzma.compress(evaluated, preset=9)) / count
    assert figures["xz -9"]["alone"] == pytest.approx(alone, abs=8 * 64 / count)
    after = 8 * (len(lzma.compress(seen + evaluated, preset=9)) - len(lzma.compress(seen, preset=9))) / count
    assert figures["xz -9"]["after_training_text"] == pytest.approx(after, abs=8 * 64 / count)
    for name in ("xz -9", "zstd --ultra -22"):
        assert figures[name]["after_training_text"] < 0.2 * figures[name]["alone"]
