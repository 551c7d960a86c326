"""Optical flow: a frame pair in, a per-pixel displacement field out, at any resolution."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import DecoderConfig, EncoderConfig, PositionEncodingConfig, _check, _check_positive
from ..decoders import InputQueryDecoder
from ..encoder import PerceiverEncoder
from ..model import PerceiverIO, PerceiverOutput
from ..processors.cost_volume import CostVolumePreprocessor
from ..processors.flow import PATCH_CHANNELS, frames_to_patches, tile_starts, tile_weights
from ..processors.image import ImagePreprocessor, ImagePreprocessorConfig
from . import transformers_keys as keys
from .base import TaskModel
from .registry import Preset, TaskSpec, TransformersArchitecture, register_task


@dataclass
class OpticalFlowConfig:
    """The published optical-flow architecture, parameterised.

    The two frames' 3×3 patches are folded into 54 channels per pixel, projected to ``patch_features`` and
    given 2-D Fourier positions; each pixel's input feature is also its decoder query. Raw outputs are divided
    by ``rescale_factor`` (Transformers' ``.logits``) and multiplied by ``flow_scale_factor`` to get pixels.
    """

    train_size: tuple[int, int] = (368, 496)
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(
        num_latents=2048, d_latents=512, num_self_attends_per_block=24, num_self_attention_heads=16,
        num_cross_attention_heads=1))
    num_bands: int = 64
    patch_features: int = 64
    decoder_num_heads: int = 1
    rescale_factor: float = 100.0
    flow_scale_factor: float = 20.0
    tile_overlap: int = 20
    cost_volume_radius: int = 0
    """0 (published): patches only. ``r > 0`` appends each pixel's normalised cross-correlation with frame 2 at
    ``(2r + 1)²`` displacements (:mod:`perceiverkit.processors.cost_volume`) to its inputs and decoder query."""
    cost_volume_stride: int = 1
    """Spacing in pixels of the cost volume's displacements (reach = radius × stride)."""
    decoder_query_residual: bool = False
    """Add each pixel's query to its decoded features (published: False). With a cost volume this lets a pixel's
    own matching scores reach its output directly rather than only through which latents it attends to."""

    def validate(self) -> None:
        _check(len(self.train_size) == 2,
               f"OpticalFlowConfig.train_size must be (height, width), got {self.train_size}")
        _check_positive("OpticalFlowConfig", height=self.train_size[0], width=self.train_size[1],
                        num_bands=self.num_bands, patch_features=self.patch_features,
                        decoder_num_heads=self.decoder_num_heads)
        _check(self.cost_volume_radius >= 0 and self.cost_volume_stride >= 1,
               f"OpticalFlowConfig needs cost_volume_radius >= 0 and cost_volume_stride >= 1, got "
               f"{self.cost_volume_radius} and {self.cost_volume_stride}")
        _check(0 <= self.tile_overlap < min(self.train_size),
               f"OpticalFlowConfig.tile_overlap must lie in [0, {min(self.train_size)}), got {self.tile_overlap}")
        self.encoder.validate()

    def image_config(self) -> ImagePreprocessorConfig:
        return ImagePreprocessorConfig(
            prep_type="patches", in_channels=PATCH_CHANNELS, out_channels=self.patch_features,
            spatial_downsample=1, temporal_downsample=2, linear_after_patching=True,
            position=PositionEncodingConfig(kind="fourier", num_bands=self.num_bands,
                                            max_resolution=tuple(self.train_size)),
        )


@dataclass
class FlowOutput(PerceiverOutput):
    """``logits`` ``(B, H, W, 2)`` in the model's units (as Transformers), ``flow`` in pixels (x, y)."""

    flow: Tensor | None = None


class OpticalFlow(TaskModel[OpticalFlowConfig]):
    """Estimates optical flow from frame 1 to frame 2.

    ``inputs`` is either Transformers' pre-patched ``(B, 2, 27, H, W)`` (pixels in [-1, 1]) or raw RGB frame
    pairs ``(B, 2, 3, H, W)`` in [0, 255], whose patches are extracted here. At the training size the model
    runs once; at any other size, overlapping tiles of the training size are stitched with weights that fall
    off towards tile edges.
    """

    task = "optical-flow"
    config_class = OpticalFlowConfig

    def __init__(self, config: OpticalFlowConfig) -> None:
        super().__init__(config)
        preprocessor: ImagePreprocessor | CostVolumePreprocessor = ImagePreprocessor(config.image_config(), video=True)
        if config.cost_volume_radius:
            preprocessor = CostVolumePreprocessor(preprocessor, config.cost_volume_radius, config.cost_volume_stride)
        width = preprocessor.num_channels
        decoder = InputQueryDecoder(
            DecoderConfig(output_index_dims=tuple(config.train_size), query_channels=width, output_channels=2,
                          queries=None, num_heads=config.decoder_num_heads,
                          use_query_residual=config.decoder_query_residual,
                          cross_attention_shape_for_attention=config.encoder.cross_attention_shape_for_attention,
                          activation=config.encoder.activation, attention_dropout=config.encoder.attention_dropout),
            latent_channels=config.encoder.d_latents,
            rescale_factor=config.rescale_factor,
        )
        self.perceiver = PerceiverIO(PerceiverEncoder(config.encoder, input_channels=width), decoder, preprocessor)
        self.reset_parameters()

    def _run_tile(self, patches: Tensor, output_points: Tensor | None = None,
                  output_attentions: bool = False, output_hidden_states: bool = False) -> PerceiverOutput:
        out = self.perceiver(patches, None, output_points, output_attentions, output_hidden_states)
        if output_points is None:
            b, _, _, h, w = patches.shape
            out.logits = out.logits.reshape(b, h, w, 2)
        return out

    def forward(
        self,
        inputs: Tensor,
        *,
        output_points: Tensor | None = None,
        pixel_range: float = 255.0,
        tile_batch_size: int = 8,
        progress: Callable[[int, int], None] | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> FlowOutput:
        """Flow for every pixel ``(B, H, W, 2)``, or at ``output_points`` ``(B, Q, 2)`` (flat pixel indices,
        training size only — for training on random subsets of pixels). ``progress(done, total)`` is called
        after each batch of tiles."""
        if not isinstance(inputs, Tensor) or inputs.dim() != 5 or inputs.shape[1] != 2:
            shape = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
            raise ValueError(f"optical flow needs frame pairs (batch, 2, 3 or 27, height, width), got {shape}")
        if inputs.shape[2] == 3:
            patches = frames_to_patches(inputs, pixel_range)
        elif inputs.shape[2] == PATCH_CHANNELS:
            patches = inputs if inputs.dtype.is_floating_point else inputs.float()
        else:
            raise ValueError(f"frames must have 3 (RGB) or {PATCH_CHANNELS} (3×3 patches) channels, "
                             f"got shape {tuple(inputs.shape)}")
        size = tuple(patches.shape[-2:])
        if size == tuple(self.config.train_size):
            out = self._run_tile(patches, output_points, output_attentions, output_hidden_states)
        else:
            if output_points is not None or output_attentions or output_hidden_states:
                raise ValueError(f"output_points and attention/hidden-state outputs need inputs of the training size "
                                 f"{tuple(self.config.train_size)}, got {size}")
            out = PerceiverOutput(logits=self._tiled(patches, tile_batch_size, progress))
        # cast: the InputQueryDecoder and no postprocessor give one tensor, never a dict by modality
        return FlowOutput(**vars(out), flow=cast(Tensor, out.logits) * self.config.flow_scale_factor)

    def _tiled(self, patches: Tensor, tile_batch_size: int, progress: Callable[[int, int], None] | None) -> Tensor:
        th, tw = self.config.train_size
        b, _, c, h, w = patches.shape
        # Inputs smaller than a tile are padded by repeating their border, and the result cropped back.
        pad_h, pad_w = max(0, th - h), max(0, tw - w)
        if pad_h or pad_w:
            flat = F.pad(patches.flatten(0, 1), (0, pad_w, 0, pad_h), mode="replicate")
            patches = flat.reshape(b, 2, c, h + pad_h, w + pad_w)
        height, width = patches.shape[-2:]
        corners = [(y, x) for y in tile_starts(height, th, self.config.tile_overlap)
                   for x in tile_starts(width, tw, self.config.tile_overlap)]
        weights = tile_weights(th, tw, patches.device)[..., None]
        total = torch.zeros(b, height, width, 2, device=patches.device)
        weight_sum = torch.zeros(1, height, width, 1, device=patches.device)
        per_call = max(1, tile_batch_size // b)
        for start in range(0, len(corners), per_call):
            chunk = corners[start:start + per_call]
            tiles = torch.cat([patches[..., y:y + th, x:x + tw] for y, x in chunk])
            logits = cast(Tensor, self._run_tile(tiles).logits).float().reshape(len(chunk), b, th, tw, 2)  # as above
            for (y, x), tile_logits in zip(chunk, logits, strict=True):
                total[:, y:y + th, x:x + tw] += tile_logits * weights
                weight_sum[:, y:y + th, x:x + tw] += weights
            if progress is not None:
                progress(min(start + per_call, len(corners)), len(corners))
        return (total / weight_sum)[:, :h, :w]


# --- preset and Transformers mapping ----------------------------------------------------------------------------

def _from_transformers(hf: dict[str, Any]) -> OpticalFlowConfig:
    train_size = tuple(int(v) for v in keys.hf_get(hf, "train_size"))
    overlap = min(OpticalFlowConfig.tile_overlap, min(train_size) // 4)  # small test models have small tiles
    return OpticalFlowConfig(train_size=train_size, encoder=keys.encoder_config(hf), tile_overlap=overlap)  # type: ignore[arg-type]


def _to_transformers(config: OpticalFlowConfig) -> dict[str, Any]:
    # Transformers hard-codes the published preprocessing and decoder; ours-only features (a cost volume, the query
    # residual) change the computation and cannot travel. Tiling and the pixel scale only act outside the network.
    keys.require_fields(config, OpticalFlowConfig(), ("cost_volume_radius", "decoder_query_residual", "num_bands",
                                                      "patch_features", "decoder_num_heads", "rescale_factor"),
                        "PerceiverForOpticalFlow")
    width = config.image_config().position.output_channels(2) + config.patch_features
    return keys.hf_config("PerceiverForOpticalFlow", train_size=list(config.train_size), d_model=width,
                          **keys.encoder_to_hf(config.encoder))


def _transformers_keys(config: OpticalFlowConfig) -> list[keys.KeyRule]:
    return [
        *keys.image_preprocessor("perceiver.preprocessor", "perceiver.input_preprocessor", config.image_config()),
        *keys.encoder("perceiver.encoder", "perceiver", config.encoder.num_self_attends_per_block),
        *keys.decoder("perceiver.decoder", "perceiver.decoder.decoder", trainable_queries=False),
    ]


register_task(TaskSpec(
    name=OpticalFlow.task,
    model_class=OpticalFlow,
    aliases=("flow",),
    presets=(Preset(
        name="optical-flow-perceiver",
        task=OpticalFlow.task,
        make_config=OpticalFlowConfig,
        description="Optical flow from 3×3 patches of two frames, trained on AutoFlow at 368×496.",
        hub_id="deepmind/optical-flow-perceiver",
    ),),
    transformers=(TransformersArchitecture("PerceiverForOpticalFlow", _from_transformers, _transformers_keys,
                                           _to_transformers),),
    lightning_module="perceiverkit.train.modules:OpticalFlowModule",
    data_sources={"flow-pairs": "perceiverkit.train.datamodules:FlowPairsData"},
    pipeline="perceiverkit.pipelines.flow:FlowEstimation",
))
