"""``make demo``: an offline tour — tokenizer, the full-size language preset, the generic model, a checkpoint
round trip. Until trained models ship with the package, the models here have random weights."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from .config import DecoderConfig, EncoderConfig, PositionEncodingConfig
from .decoders import CrossAttentionDecoder
from .encoder import PerceiverEncoder
from .model import PerceiverIO
from .tasks import PRESETS, TASKS, create_model
from .tokenizer import ByteTokenizer


def _section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)))


def run_demo(output: str | Path = "demo-output") -> None:
    torch.manual_seed(0)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)

    _section("Byte tokenizer")
    tokenizer = ByteTokenizer()
    texts = ["Perceiver IO reads any modality.", "Bytes: héllo 🙂 [MASK][MASK]"]
    batch = tokenizer(texts, padding=True)
    print(f"input_ids {tuple(batch.input_ids.shape)}  attention_mask {tuple(batch.attention_mask.shape)}")
    print("first ids:", batch.input_ids[1, :12].tolist())
    print("decoded:  ", tokenizer.decode(batch.input_ids[1], skip_special_tokens=True))

    _section("Presets")
    for preset in PRESETS.values():
        with torch.device("meta"):
            count = TASKS[preset.task](preset.make_config()).num_parameters()
        print(f"{preset.name:<24} {preset.task:<18} {count:>13,} parameters  ({preset.hub_id})")

    _section("language-perceiver, randomly initialised")
    start = time.perf_counter()
    model = create_model("language-perceiver").eval()
    print(f"built {model.num_parameters():,} parameters in {time.perf_counter() - start:.1f} s")
    with torch.no_grad():
        start = time.perf_counter()
        out_mlm = model(**batch)
    print(f"logits {tuple(out_mlm.logits.shape)} (batch, input length, vocabulary) "
          f"latents {tuple(out_mlm.last_hidden_state.shape)} in {time.perf_counter() - start:.2f} s")
    with torch.no_grad():
        masked = model(**batch, output_points=torch.tensor([3, 7])).logits
    print(f"decoding only positions 3 and 7: logits {tuple(masked.shape)}")
    del model

    _section("Assembling a model for a new modality")
    encoder = PerceiverEncoder(EncoderConfig(num_latents=32, d_latents=64, num_self_attends_per_block=2,
                                             num_self_attention_heads=4, num_cross_attention_heads=1),
                               input_channels=3)
    decoder = CrossAttentionDecoder(
        DecoderConfig(output_index_dims=(16, 16), query_channels=64, output_channels=1,
                      queries=PositionEncodingConfig(kind="fourier", num_bands=8, max_resolution=(16, 16),
                                                     project_pos_dim=64)),
        latent_channels=64,
    )
    generic = PerceiverIO(encoder, decoder).eval()
    points = torch.randn(2, 1000, 3)  # e.g. a point cloud: 1000 unordered xyz points
    with torch.no_grad():
        encoded = generic.encode(points)
        chunk, _ = generic.decode(encoded, output_points=torch.arange(64))
    print(f"1000 points → latents {tuple(encoded.latents.shape)} → first 64 of 256 outputs {tuple(chunk.shape)}")

    _section("Checkpoint round trip")
    small = create_model("language-perceiver", max_position_embeddings=64,
                         encoder=EncoderConfig(num_latents=16, d_latents=64, num_self_attends_per_block=2,
                                               qk_channels=32, v_channels=64)).eval()
    path = small.save_pretrained(out / "tiny-mlm")
    reloaded = TASKS[small.task].from_pretrained(path)
    ids = tokenizer("round trip", return_tensors="pt").input_ids
    with torch.no_grad():
        same = torch.equal(small(ids).logits, reloaded(ids).logits)
    print(f"saved to {path} ({sorted(p.name for p in path.iterdir())}); identical logits after reload: {same}")
