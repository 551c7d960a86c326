"""The benchmark's workloads: which official model, which inputs, and how each implementation runs them.

Every workload exists at three scales:

* ``full``: the published architecture, input size and batch size (for a GPU);
* ``cpu``: the published architecture with batch 1, sized so that one implementation takes about a minute or
  two on two slow cores (the tiled flow workload uses half-resolution tiles there: the same layers and
  parameters, two tiles instead of six full-size ones);
* ``tiny``: small random configurations of the same model classes, for tests.

Transformers' configurations are written out here as ``PerceiverConfig`` keyword arguments (its published
``config.json`` values); ``tests/benchmark`` checks that they have exactly our presets' parameter counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ..processors.flow import tile_starts, tile_weights
from ..tokenizer import ByteTokenizer
from .scales import SCALES, Scale

Mode = Literal["infer", "train"]

Inputs = dict[str, Any]
Output = Tensor | Mapping[str, Tensor]
#: ``run(model, inputs, our_config) -> output``; for training workloads the output is the scalar loss.
Runner = Callable[[nn.Module, Inputs, Any], Output]


@dataclass
class Case:
    """One workload at one scale, ready to build and run."""

    hf_class: str
    """Name of the Transformers model class, e.g. ``PerceiverForMaskedLM``."""
    hf_config: dict[str, Any]
    """Keyword arguments of ``transformers.PerceiverConfig``."""
    batch_size: int
    setup: str
    """Human-readable shapes, e.g. ``1×2048 bytes``."""
    make_inputs: Callable[[torch.Generator], Inputs]
    """CPU inputs (both implementations get the same tensors, moved to the device)."""
    run_ours: Runner
    run_theirs: Runner


@dataclass(frozen=True)
class Workload:
    """A named benchmark: one official configuration, one kind of step (inference or a training step)."""

    name: str
    description: str
    mode: Mode
    preset: str
    """Our preset with the same architecture (what ``full`` and ``cpu`` build)."""
    build: Callable[[Scale, int | None], Case]

    def case(self, scale: Scale, batch_size: int | None = None) -> Case:
        """The workload at ``scale``; ``batch_size`` overrides the scale's default."""
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; choose one of {list(SCALES)}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        return self.build(scale, batch_size)


def _batch(scale: Scale, override: int | None, full: int) -> int:
    if override is not None:
        return override
    return {"full": full, "cpu": 1, "tiny": 2}[scale]


_TINY_ENCODER = dict(num_latents=8, d_latents=64, d_model=32, num_self_attends_per_block=2,
                     num_self_attention_heads=4, num_cross_attention_heads=2)

# --- language: deepmind/language-perceiver ----------------------------------------------------------------------

_LANGUAGE = dict(vocab_size=262, max_position_embeddings=2048, d_model=768, num_latents=256, d_latents=1280,
                 num_self_attends_per_block=26, num_self_attention_heads=8, num_cross_attention_heads=8,
                 qk_channels=256, v_channels=1280)
_TINY_LANGUAGE = dict(_TINY_ENCODER, max_position_embeddings=40)
MASK_PROBABILITY = 0.15
IGNORE_INDEX = -100  # cross-entropy's ignore_index, in both libraries


def _text_ids(batch: int, length: int, gen: torch.Generator) -> Tensor:
    # Bytes only (no special tokens), full length: packed pre-training text has no padding, so neither side
    # gets an attention mask.
    return torch.randint(ByteTokenizer.num_special_tokens, ByteTokenizer.vocab_size, (batch, length), generator=gen)


def _mlm_train(scale: Scale, batch_size: int | None) -> Case:
    config = _TINY_LANGUAGE if scale == "tiny" else _LANGUAGE
    batch, length = _batch(scale, batch_size, 64), config["max_position_embeddings"]
    masked = max(1, round(MASK_PROBABILITY * length))

    def make_inputs(gen: torch.Generator) -> Inputs:
        # The same number of random positions in every row (so that output_points is a dense (B, Q) tensor,
        # as our training's masking makes it), all replaced by [MASK]; labels are -100 elsewhere.
        ids = _text_ids(batch, length, gen)
        points = torch.rand(batch, length, generator=gen).argsort(dim=1)[:, :masked].sort(dim=1).values
        labels = torch.full_like(ids, IGNORE_INDEX).scatter(1, points, ids.gather(1, points))
        corrupted = ids.scatter(1, points, ByteTokenizer.mask_token_id)
        return {"input_ids": corrupted, "labels": labels, "output_points": points}

    def ours(model: nn.Module, x: Inputs, _: object) -> Output:
        # Decode only the masked positions (what our training does); the loss is the same.
        return model(x["input_ids"], None, x["labels"], output_points=x["output_points"]).loss

    def theirs(model: nn.Module, x: Inputs, _: object) -> Output:
        # Transformers decodes all max_position_embeddings positions; labels are -100 where not masked.
        return model(input_ids=x["input_ids"], labels=x["labels"]).loss

    return Case("PerceiverForMaskedLM", dict(config), batch,
                f"{batch}×{length} bytes, {masked} masked/row, AdamW", make_inputs, ours, theirs)


def _mlm_infer(scale: Scale, batch_size: int | None) -> Case:
    config = _TINY_LANGUAGE if scale == "tiny" else _LANGUAGE
    batch, length = _batch(scale, batch_size, 64), config["max_position_embeddings"]
    return Case(
        "PerceiverForMaskedLM", dict(config), batch, f"{batch}×{length} bytes, logits at every position",
        lambda gen: {"input_ids": _text_ids(batch, length, gen)},
        lambda model, x, _: model(x["input_ids"]).logits,
        lambda model, x, _: model(input_ids=x["input_ids"]).logits,
    )


# --- vision: deepmind/vision-perceiver-{learned,fourier,conv} ---------------------------------------------------

_IMAGENET = dict(num_latents=512, d_latents=1024, num_blocks=8, num_self_attends_per_block=6,
                 num_self_attention_heads=8, num_cross_attention_heads=1, num_labels=1000, image_size=224)


def _vision(hf_class: str) -> Callable[[Scale, int | None], Case]:
    def build(scale: Scale, batch_size: int | None) -> Case:
        if scale == "tiny":
            # Fourier pixels have 3 + 258 = 261 channels (3·3·29): one cross-attention head divides them.
            cross_heads = 1 if hf_class.endswith("Fourier") else 2
            config = dict(_TINY_ENCODER, num_blocks=2, num_labels=5, image_size=16,
                          num_cross_attention_heads=cross_heads)
            # The conv stem downsamples 4×; Transformers fixes its Fourier grid, so any size works.
            size = 32 if hf_class.endswith("ConvProcessing") else 16
        else:
            config, size = dict(_IMAGENET), 224
        batch = _batch(scale, batch_size, 64)

        def make_inputs(gen: torch.Generator) -> Inputs:
            return {"pixel_values": torch.randn(batch, 3, size, size, generator=gen)}

        def run(model: nn.Module, x: Inputs, _: object) -> Output:
            return model(pixel_values=x["pixel_values"]).logits

        return Case(hf_class, config, batch, f"{batch}×3×{size}×{size}", make_inputs, run, run)

    return build


# --- optical flow: deepmind/optical-flow-perceiver --------------------------------------------------------------

_FLOW: dict[str, Any] = dict(num_latents=2048, d_latents=512, d_model=322, num_self_attends_per_block=24,
                             num_self_attention_heads=16, num_cross_attention_heads=1, train_size=[368, 496])


def stitch_tiles(run_tile: Callable[[Tensor], Tensor], patches: Tensor, tile: tuple[int, int],
                 overlap: int) -> Tensor:
    """Transformers' side of tiled flow: run the model on each tile of ``patches`` ``(B, 2, C, H, W)`` one at
    a time and blend the ``(B, h, w, 2)`` results with our tile positions and weights, so that both sides do
    the same work. Frames must be at least one tile in each direction."""
    th, tw = tile
    batch, _, _, height, width = patches.shape
    if height < th or width < tw:
        raise ValueError(f"frames {height}×{width} are smaller than a {th}×{tw} tile")
    weights = tile_weights(th, tw, patches.device)[..., None]
    total = torch.zeros(batch, height, width, 2, device=patches.device)
    weight_sum = torch.zeros(1, height, width, 1, device=patches.device)
    for y in tile_starts(height, th, overlap):
        for x in tile_starts(width, tw, overlap):
            total[:, y:y + th, x:x + tw] += run_tile(patches[..., y:y + th, x:x + tw]).float() * weights
            weight_sum[:, y:y + th, x:x + tw] += weights
    return total / weight_sum


def _flow(full_frames: tuple[int, int], full_batch: int) -> Callable[[Scale, int | None], Case]:
    tiled = full_frames != tuple(_FLOW["train_size"])

    def build(scale: Scale, batch_size: int | None) -> Case:
        if scale == "tiny":
            train_size = (12, 16)
            frames = (20, 30) if tiled else train_size  # 2×3 tiles, like 436×1024 at full size
            config = dict(_TINY_ENCODER, train_size=list(train_size))
        elif scale == "cpu" and tiled:
            # Half-resolution tiles keep every layer and parameter; 184×400 frames need two of them.
            train_size, frames = (184, 248), (184, 400)
            config = dict(_FLOW, train_size=list(train_size))
        else:
            train_size, frames, config = tuple(_FLOW["train_size"]), full_frames, dict(_FLOW)
        batch = _batch(scale, batch_size, full_batch)
        # The same overlap rule as our converter (small test tiles get a smaller overlap).
        overlap = min(20, min(train_size) // 4)
        tiles = (len(tile_starts(frames[0], train_size[0], overlap))
                 * len(tile_starts(frames[1], train_size[1], overlap)))

        def make_inputs(gen: torch.Generator) -> Inputs:
            # Transformers' input format: 3×3 patches of both frames, pixel values in [-1, 1].
            return {"patches": torch.rand(batch, 2, 27, *frames, generator=gen) * 2 - 1}

        def ours(model: nn.Module, x: Inputs, _: object) -> Output:
            return model(x["patches"]).logits  # tiles internally, several tiles per forward pass

        def theirs(model: nn.Module, x: Inputs, our_config: Any) -> Output:
            patches = x["patches"]
            if tuple(patches.shape[-2:]) == tuple(our_config.train_size):
                return model(inputs=patches).logits
            return stitch_tiles(lambda tile: model(inputs=tile).logits, patches, tuple(our_config.train_size),
                                our_config.tile_overlap)

        setup = f"{batch} pair(s) {frames[0]}×{frames[1]}"
        if tiles > 1:
            setup += f", {tiles} tiles of {train_size[0]}×{train_size[1]}"
        return Case("PerceiverForOpticalFlow", config, batch, setup, make_inputs, ours, theirs)

    return build


# --- multimodal autoencoding: deepmind/multimodal-perceiver -----------------------------------------------------

_MULTIMODAL: dict[str, Any] = dict(
    num_latents=784, d_latents=512, d_model=704, num_self_attends_per_block=8, num_self_attention_heads=8,
    num_cross_attention_heads=1, num_labels=700, num_frames=16, image_size=224, audio_samples_per_frame=1920,
    samples_per_patch=16, output_shape=[1, 16, 224, 224], output_num_channels=512)
_TINY_MULTIMODAL: dict[str, Any] = dict(
    num_latents=8, d_latents=32, d_model=32, num_self_attends_per_block=1, num_self_attention_heads=2,
    num_cross_attention_heads=1, num_labels=5, num_frames=2, image_size=8, audio_samples_per_frame=16,
    samples_per_patch=4, output_shape=[1, 2, 8, 8], output_num_channels=12)


def _multimodal(scale: Scale, batch_size: int | None) -> Case:
    config = _TINY_MULTIMODAL if scale == "tiny" else _MULTIMODAL
    # Transformers' documented example decodes the first of 128 chunks of the outputs (6272 pixels and
    # 15 audio patches); tiny models have too few outputs for 128 chunks.
    chunks = 4 if scale == "tiny" else 128
    batch = _batch(scale, batch_size, 4)
    frames, size, spp = config["num_frames"], config["image_size"], config["samples_per_patch"]
    samples = frames * config["audio_samples_per_frame"]
    image_points, audio_points = frames * size * size // chunks, samples // spp // chunks

    def make_inputs(gen: torch.Generator) -> Inputs:
        inputs = {"image": torch.rand(batch, frames, 3, size, size, generator=gen),
                  "audio": torch.randn(batch, samples, 1, generator=gen),
                  "label": torch.zeros(batch, config["num_labels"])}  # a masked label, as at inference
        points = {"image": torch.arange(image_points), "audio": torch.arange(audio_points), "label": None}
        return {"inputs": inputs, "points": points}

    def ours(model: nn.Module, x: Inputs, _: object) -> Output:
        return dict(model(x["inputs"], x["points"]).logits)

    def theirs(model: nn.Module, x: Inputs, _: object) -> Output:
        return dict(model(inputs=x["inputs"], subsampled_output_points=x["points"]).logits)

    setup = (f"{batch}×{frames}×{size}² video + {samples} audio samples, "
             f"{image_points} pixels + {audio_points} audio patches decoded")
    return Case("PerceiverForMultimodalAutoencoding", dict(config), batch, setup, make_inputs, ours, theirs)


# --- registry ---------------------------------------------------------------------------------------------------

WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("mlm-train", "language-perceiver MLM training step", "train", "language-perceiver", _mlm_train),
    Workload("mlm-infer", "language-perceiver MLM inference", "infer", "language-perceiver", _mlm_infer),
    Workload("vision-learned", "vision-perceiver-learned inference", "infer", "vision-perceiver-learned",
             _vision("PerceiverForImageClassificationLearned")),
    Workload("vision-fourier", "vision-perceiver-fourier inference", "infer", "vision-perceiver-fourier",
             _vision("PerceiverForImageClassificationFourier")),
    Workload("vision-conv", "vision-perceiver-conv inference", "infer", "vision-perceiver-conv",
             _vision("PerceiverForImageClassificationConvProcessing")),
    Workload("flow-368x496", "optical-flow-perceiver inference, one tile", "infer", "optical-flow-perceiver",
             _flow((368, 496), 8)),
    Workload("flow-436x1024", "optical-flow-perceiver inference, tiled (Sintel size)", "infer",
             "optical-flow-perceiver", _flow((436, 1024), 1)),
    Workload("multimodal", "multimodal-perceiver autoencoding inference", "infer", "multimodal-perceiver",
             _multimodal),
)}


def select_workloads(names: str | list[str] | tuple[str, ...] | None) -> list[Workload]:
    """Workloads by name (a list, or one comma-separated string); all of them when ``names`` is empty."""
    if not names:
        return list(WORKLOADS.values())
    if isinstance(names, str):
        names = [names]
    wanted = [n.strip() for name in names for n in name.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in WORKLOADS]
    if unknown:
        raise ValueError(f"unknown workload(s) {', '.join(unknown)}; valid: {', '.join(WORKLOADS)}")
    return [WORKLOADS[n] for n in dict.fromkeys(wanted)]
