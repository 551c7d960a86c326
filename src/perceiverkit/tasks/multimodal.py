"""Multimodal autoencoding: video, audio and a class label in; all three reconstructed from the latents.

The published model (Kinetics-700) reads 16 frames of 224×224 video as 4×4 patches, 30,720 audio samples as
16-sample patches and a masked label, compresses them into 784 latents and decodes any subset of pixels, audio
patches and the label. Decoding every output at once needs far too much memory, so full reconstructions are
decoded in chunks from latents encoded once (:meth:`MultimodalAutoencoder.reconstruct`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import ConfigError, DecoderConfig, EncoderConfig, PositionEncodingConfig, _check, _check_positive
from ..decoders import MultimodalDecoder, PositionQueries, multimodal_query_channels
from ..encoder import PerceiverEncoder
from ..model import PerceiverIO, PerceiverOutput
from ..processors.audio import AudioPostprocessor, AudioPreprocessor
from ..processors.image import ImagePreprocessor, ImagePreprocessorConfig
from ..processors.label import ClassificationPostprocessor, OneHotPreprocessor, ProjectionPostprocessor
from ..processors.multimodal import MultimodalPostprocessor, MultimodalPreprocessor
from . import transformers_keys as keys
from .base import TaskModel
from .heads import check_labels
from .registry import Preset, TaskSpec, TransformersArchitecture, register_task

AUDIO, IMAGE, LABEL = "audio", "image", "label"


@dataclass
class AutoencoderLossWeights:
    """Weights of the published objective: L1 on video and audio, cross-entropy on the label."""

    image: float = 0.03
    audio: float = 1.0
    label: float = 0.0001


@dataclass
class MultimodalAutoencoderConfig:
    """Sizes of the video + audio + label autoencoder; defaults are DeepMind's Kinetics-700 model."""

    num_frames: int = 16
    image_size: int = 224
    image_patch_size: int = 4
    image_num_bands: int = 32
    audio_samples_per_frame: int = 1920
    samples_per_patch: int = 16
    audio_num_bands: int = 192
    num_labels: int = 700
    label_query_channels: int = 1024
    output_num_channels: int = 512
    input_padding: int = 4
    query_padding: int = 2
    mask_probs: dict[str, float] = field(default_factory=lambda: {IMAGE: 0.0, AUDIO: 0.0, LABEL: 1.0})
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(
        num_latents=784, d_latents=512, num_self_attends_per_block=8, num_self_attention_heads=8,
        num_cross_attention_heads=1))
    loss_weights: AutoencoderLossWeights = field(default_factory=AutoencoderLossWeights)
    labels: tuple[str, ...] | None = None
    output_grid: tuple[int, int, int] | None = None
    """(frames, height, width) of the decoded video (Transformers' ``output_shape[1:]``); ``None``: the input's
    ``(num_frames, image_size, image_size)``. Fourier positions are encoded at that input resolution either way."""

    def validate(self) -> None:
        _check(self.output_grid is None or len(self.output_grid) == 3,
               f"MultimodalAutoencoderConfig.output_grid must be (frames, height, width), got {self.output_grid}")
        if self.output_grid is not None:
            _check_positive("MultimodalAutoencoderConfig", output_frames=self.output_grid[0],
                            output_height=self.output_grid[1], output_width=self.output_grid[2])
        _check_positive("MultimodalAutoencoderConfig", num_frames=self.num_frames, image_size=self.image_size,
                        image_patch_size=self.image_patch_size, image_num_bands=self.image_num_bands,
                        audio_samples_per_frame=self.audio_samples_per_frame,
                        samples_per_patch=self.samples_per_patch, audio_num_bands=self.audio_num_bands,
                        label_query_channels=self.label_query_channels,
                        output_num_channels=self.output_num_channels)
        _check(self.image_size % self.image_patch_size == 0,
               f"image_size {self.image_size} must be divisible by image_patch_size {self.image_patch_size}")
        _check(self.num_audio_samples % self.samples_per_patch == 0,
               f"{self.num_audio_samples} audio samples must be divisible by samples_per_patch "
               f"{self.samples_per_patch}")
        _check(set(self.mask_probs) <= {AUDIO, IMAGE, LABEL},
               f"mask_probs may only name {[AUDIO, IMAGE, LABEL]}, got {sorted(self.mask_probs)}")
        check_labels("MultimodalAutoencoderConfig", self.num_labels, self.labels)
        self.encoder.validate()

    @property
    def num_audio_samples(self) -> int:
        return self.num_frames * self.audio_samples_per_frame

    @property
    def video_grid(self) -> tuple[int, int, int]:
        """The input video's (frames, height, width), and the resolution its Fourier positions are encoded at."""
        return (self.num_frames, self.image_size, self.image_size)

    @property
    def decoded_grid(self) -> tuple[int, int, int]:
        """The (frames, height, width) grid of decoded pixels."""
        return self.output_grid or self.video_grid

    def num_outputs(self) -> dict[str, int]:
        """How many output points each modality has."""
        t, h, w = self.decoded_grid
        return {AUDIO: self.num_audio_samples // self.samples_per_patch, IMAGE: t * h * w, LABEL: 1}


class MultimodalAutoencoder(TaskModel[MultimodalAutoencoderConfig]):
    """Reconstructs ``{"image": (B, T, 3, H, W), "audio": (B, S[, 1]), "label": (B, num_labels)}``.

    ``forward(inputs, subsampled_output_points)`` decodes the chosen points (Transformers' interface):
    ``logits["image"]`` is ``(B, Q_image, 3)``, ``logits["audio"]`` ``(B, Q_audio · samples_per_patch)`` and
    ``logits["label"]`` ``(B, num_labels)``. Without points, everything is decoded in chunks.
    """

    task = "multimodal-autoencoding"
    config_class = MultimodalAutoencoderConfig

    def __init__(self, config: MultimodalAutoencoderConfig) -> None:
        super().__init__(config)
        enc = config.encoder
        audio_positions = PositionEncodingConfig(kind="fourier", num_bands=config.audio_num_bands,
                                                 max_resolution=(config.num_audio_samples,))
        video_positions = PositionEncodingConfig(kind="fourier", num_bands=config.image_num_bands,
                                                 max_resolution=config.video_grid)
        preprocessor = MultimodalPreprocessor(
            {
                AUDIO: AudioPreprocessor(config.samples_per_patch, audio_positions),
                IMAGE: ImagePreprocessor(ImagePreprocessorConfig(
                    prep_type="patches", spatial_downsample=config.image_patch_size, temporal_downsample=1,
                    position=video_positions), video=True),
                LABEL: OneHotPreprocessor(config.num_labels),
            },
            min_padding_size=config.input_padding,
            mask_probs=config.mask_probs,
        )
        outputs = config.num_outputs()
        # The decoder was trained on subsampled points, whose coordinates are -1 + 2i/n: keep that grid.
        queries = {
            AUDIO: PositionQueries(PositionEncodingConfig(kind="fourier", num_bands=config.audio_num_bands,
                                                          max_resolution=(config.num_audio_samples,),
                                                          grid="fraction"), (outputs[AUDIO],)),
            IMAGE: PositionQueries(PositionEncodingConfig(kind="fourier", num_bands=config.image_num_bands,
                                                          max_resolution=config.video_grid, grid="fraction"),
                                   config.decoded_grid),
            LABEL: PositionQueries(PositionEncodingConfig(kind="trainable", num_channels=config.label_query_channels),
                                   (1,)),
        }
        width = multimodal_query_channels(queries, config.query_padding)
        decoder = MultimodalDecoder(
            queries,
            DecoderConfig(output_index_dims=(sum(outputs.values()),), query_channels=width,
                          output_channels=config.output_num_channels, queries=None, use_query_residual=False,
                          cross_attention_shape_for_attention=enc.cross_attention_shape_for_attention,
                          activation=enc.activation, attention_dropout=enc.attention_dropout),
            latent_channels=enc.d_latents,
            min_padding_size=config.query_padding,
        )
        postprocessor = MultimodalPostprocessor({
            AUDIO: AudioPostprocessor(config.output_num_channels, config.samples_per_patch),
            IMAGE: ProjectionPostprocessor(config.output_num_channels, 3),
            LABEL: ClassificationPostprocessor(config.output_num_channels, config.num_labels),
        })
        self.perceiver = PerceiverIO(PerceiverEncoder(enc, input_channels=preprocessor.num_channels), decoder,
                                     preprocessor, postprocessor)
        self.reset_parameters()

    def forward(
        self,
        inputs: Mapping[str, Tensor],
        subsampled_output_points: Mapping[str, Tensor | None] | None = None,
        *,
        chunk_size: int = 16384,
        progress: Callable[[int, int], None] | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> PerceiverOutput:
        """Outputs at ``subsampled_output_points`` (flat indices per modality; ``None`` for a modality = all of
        it), or every output decoded ``chunk_size`` queries at a time when no points are given."""
        if subsampled_output_points is not None:
            return self.perceiver(inputs, None, subsampled_output_points, output_attentions, output_hidden_states)
        if self.training:
            raise ValueError("training decodes subsampled points; pass subsampled_output_points "
                             "(see MultimodalAutoencoder.sample_points)")
        encoded = self.perceiver.encode(inputs, None, output_attentions, output_hidden_states)
        logits = self.perceiver.decode_chunked(encoded, chunk_size, progress)
        return PerceiverOutput(logits=logits, last_hidden_state=encoded.latents, hidden_states=encoded.hidden_states,
                               attentions=encoded.self_attentions, cross_attentions=encoded.cross_attentions)

    @torch.no_grad()
    def reconstruct(self, inputs: Mapping[str, Tensor], chunk_size: int = 16384,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, Tensor]:
        """Every pixel, audio sample and the label logits, shaped like the inputs: ``image`` ``(B, T, H, W, 3)``,
        ``audio`` ``(B, S)``, ``label`` ``(B, num_labels)``. Encodes once; decodes in chunks."""
        # cast: the MultimodalPostprocessor always returns a dict by modality
        logits = cast(dict[str, Tensor], self.forward(inputs, chunk_size=chunk_size, progress=progress).logits)
        batch = logits[IMAGE].shape[0]
        return {IMAGE: logits[IMAGE].reshape(batch, *self.config.decoded_grid, 3),
                AUDIO: logits[AUDIO], LABEL: logits[LABEL]}

    def sample_points(self, num_image: int, num_audio: int, generator: torch.Generator | None = None,
                      device: torch.device | None = None) -> dict[str, Tensor | None]:
        """Random output points for training: ``num_image`` pixels and ``num_audio`` audio patches."""
        outputs = self.config.num_outputs()
        if not (0 < num_image <= outputs[IMAGE] and 0 < num_audio <= outputs[AUDIO]):
            raise ValueError(f"can sample 1..{outputs[IMAGE]} image and 1..{outputs[AUDIO]} audio points, "
                             f"got {num_image} and {num_audio}")
        image = torch.randperm(outputs[IMAGE], generator=generator)[:num_image].sort().values
        audio = torch.randperm(outputs[AUDIO], generator=generator)[:num_audio].sort().values
        return {IMAGE: image.to(device), AUDIO: audio.to(device), LABEL: None}

    def loss(self, inputs: Mapping[str, Tensor], logits: Mapping[str, Tensor],
             points: Mapping[str, Tensor | None]) -> tuple[Tensor, dict[str, Tensor]]:
        """The published objective on subsampled outputs: weighted L1 on the chosen pixels (channels-last video)
        and audio samples, cross-entropy on the label. Returns the total and each term (unweighted)."""
        targets = autoencoding_targets(inputs, points, self.config)
        terms: dict[str, Tensor] = {}
        if IMAGE in logits:
            terms[IMAGE] = F.l1_loss(logits[IMAGE].float(), targets[IMAGE])
        if AUDIO in logits:
            terms[AUDIO] = F.l1_loss(logits[AUDIO].float(), targets[AUDIO])
        if LABEL in logits:
            terms[LABEL] = F.cross_entropy(logits[LABEL].float(), targets[LABEL])
        weights = self.config.loss_weights
        total = sum(getattr(weights, name) * value for name, value in terms.items())
        return total, terms


def autoencoding_targets(inputs: Mapping[str, Tensor], points: Mapping[str, Tensor | None],
                         config: MultimodalAutoencoderConfig) -> dict[str, Tensor]:
    """What the decoder should reproduce at ``points``: pixels ``(B, Q, 3)``, audio samples ``(B, Q·spp)``
    and class indices ``(B,)``."""
    video = inputs[IMAGE].float()
    batch = video.shape[0]
    pixels = video.permute(0, 1, 3, 4, 2).reshape(batch, -1, 3)  # (T, H, W) flat order, channels last
    if config.decoded_grid != tuple(video.shape[1:2] + video.shape[3:]):
        raise ValueError(f"the model decodes a {config.decoded_grid} video grid but the input video is "
                         f"{tuple(video.shape[1:2] + video.shape[3:])}: pixel targets need output_grid equal to it")
    audio = inputs[AUDIO].float().reshape(batch, -1, config.samples_per_patch)
    image_points, audio_points = points.get(IMAGE), points.get(AUDIO)
    if image_points is not None:
        pixels = pixels[:, image_points]
    if audio_points is not None:
        audio = audio[:, audio_points]
    return {IMAGE: pixels, AUDIO: audio.flatten(1), LABEL: inputs[LABEL].argmax(-1)}


# --- preset and Transformers mapping ----------------------------------------------------------------------------

def _from_transformers(hf: dict[str, Any]) -> MultimodalAutoencoderConfig:
    frames, size = int(keys.hf_get(hf, "num_frames")), keys.image_size(hf)
    output_shape = tuple(int(v) for v in keys.hf_get(hf, "output_shape"))
    if len(output_shape) != 4:
        raise ConfigError(f"output_shape must be [batch, frames, height, width], got {list(output_shape)}")
    # Transformers encodes positions at (num_frames, image_size, image_size) whatever grid it decodes.
    decoded = (output_shape[1], output_shape[2], output_shape[3])
    labels = keys.label_names(hf)
    return MultimodalAutoencoderConfig(
        num_frames=frames, image_size=size, audio_samples_per_frame=int(keys.hf_get(hf, "audio_samples_per_frame")),
        samples_per_patch=int(keys.hf_get(hf, "samples_per_patch")), num_labels=keys.num_labels(hf, labels),
        label_query_channels=int(keys.hf_get(hf, "_label_trainable_num_channels")),
        output_num_channels=int(keys.hf_get(hf, "output_num_channels")), encoder=keys.encoder_config(hf),
        labels=labels, output_grid=None if decoded == (frames, size, size) else decoded)


def _to_transformers(config: MultimodalAutoencoderConfig) -> dict[str, Any]:
    # Transformers hard-codes the published patching, position bands, paddings and masking; the loss weights act
    # only in training and do not travel.
    keys.require_fields(config, MultimodalAutoencoderConfig(), ("image_patch_size", "image_num_bands",
                                                                "audio_num_bands", "input_padding", "query_padding",
                                                                "mask_probs"), "PerceiverForMultimodalAutoencoding")
    return keys.hf_config(
        "PerceiverForMultimodalAutoencoding", num_frames=config.num_frames, image_size=config.image_size,
        audio_samples_per_frame=config.audio_samples_per_frame, samples_per_patch=config.samples_per_patch,
        output_shape=[1, *config.decoded_grid], output_num_channels=config.output_num_channels,
        _label_trainable_num_channels=config.label_query_channels, **keys.encoder_to_hf(config.encoder),
        **keys.labels_to_hf(config.num_labels, config.labels, None))


def _transformers_keys(config: MultimodalAutoencoderConfig) -> list[keys.KeyRule]:
    names = (AUDIO, IMAGE, LABEL)
    theirs_pre, ours_pre = "perceiver.input_preprocessor", "perceiver.preprocessor"
    rules = [keys.rule(f"{ours_pre}.padding.{n}", f"{theirs_pre}.padding.{n}") for n in names]
    rules += [keys.rule(f"{ours_pre}.mask.{n}", f"{theirs_pre}.mask.{n}") for n in config.mask_probs]
    rules += keys.encoder("perceiver.encoder", "perceiver", config.encoder.num_self_attends_per_block)
    rules.append(keys.rule("perceiver.decoder.queries.label.encoding.embeddings",
                           "perceiver.decoder.modalities.label.decoder.output_position_encodings.position_embeddings"))
    rules += [keys.rule(f"perceiver.decoder.padding.{n}", f"perceiver.decoder.padding.{n}") for n in names]
    rules += keys.decoder("perceiver.decoder.decoder", "perceiver.decoder.decoder", trainable_queries=False)
    rules += [r for n in names for r in keys.affine(f"perceiver.postprocessor.modalities.{n}.linear",
                                                    f"perceiver.output_postprocessor.modalities.{n}.classifier")]
    return rules


register_task(TaskSpec(
    name=MultimodalAutoencoder.task,
    model_class=MultimodalAutoencoder,
    aliases=("autoencoding",),
    presets=(Preset(
        name="multimodal-perceiver",
        task=MultimodalAutoencoder.task,
        make_config=MultimodalAutoencoderConfig,
        description="Video + audio + label autoencoder trained on Kinetics-700 (16 frames of 224×224, 48 kHz audio).",
        hub_id="deepmind/multimodal-perceiver",
    ),),
    transformers=(TransformersArchitecture("PerceiverForMultimodalAutoencoding", _from_transformers,
                                           _transformers_keys, _to_transformers),),
    lightning_module="perceiverkit.train.modules:AutoencoderModule",
    data_sources={"video-clips": "perceiverkit.train.datamodules:VideoClipsData"},
    pipeline="perceiverkit.pipelines.autoencode:Autoencode",
))
