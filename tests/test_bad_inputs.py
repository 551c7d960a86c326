"""One table of bad inputs across models, configs, tokenizer, pipelines, checkpoints, training and the CLI:
each must raise a clear ValueError/TypeError (or our subclasses) that names what was expected."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

import perceiverkit as pk
from perceiverkit.cli import main
from perceiverkit.config import DecoderConfig, EncoderConfig, PositionEncodingConfig
from perceiverkit.pipelines import FillMask, FlowEstimation, ImageClassification
from perceiverkit.processors import ImagePreprocessorConfig
from perceiverkit.tasks import PointCloudClassifier, PointCloudClassifierConfig
from perceiverkit.train import load_train_config
from perceiverkit.train.config import apply_override

TINY = EncoderConfig(num_latents=4, d_latents=16, num_self_attends_per_block=1, num_self_attention_heads=2,
                     num_cross_attention_heads=1)
torch.manual_seed(0)
MLM = pk.MaskedLanguageModel(pk.MaskedLanguageModelConfig(d_model=16, max_position_embeddings=12, encoder=TINY)).eval()
LEARNED = pk.ImageClassifier(pk.ImageClassifierConfig(
    image=ImagePreprocessorConfig(prep_type="conv1x1", out_channels=8, spatial_downsample=1, position_grid=(8, 8),
                                  position=PositionEncodingConfig(kind="trainable", num_channels=8)),
    encoder=TINY, num_labels=3)).eval()
FLOW = pk.OpticalFlow(pk.OpticalFlowConfig(train_size=(8, 8), num_bands=2, patch_features=8, tile_overlap=2,
                                           encoder=TINY)).eval()
AUTO = pk.MultimodalAutoencoder(pk.MultimodalAutoencoderConfig(
    num_frames=2, image_size=8, image_num_bands=2, audio_samples_per_frame=8, samples_per_patch=4,
    audio_num_bands=2, num_labels=3, label_query_channels=4, output_num_channels=8, encoder=TINY)).eval()
POINTS = PointCloudClassifier(PointCloudClassifierConfig(num_bands=2, encoder=TINY)).eval()
IDS = torch.randint(6, 262, (2, 5))
VIDEO = {"image": torch.rand(1, 2, 3, 8, 8), "audio": torch.randn(1, 16), "label": torch.zeros(1, 3)}
PTS = {"image": torch.tensor([0]), "audio": torch.tensor([0])}


def _checked_mlm() -> pk.MaskedLanguageModel:
    return pk.MaskedLanguageModel(MLM.config).enable_input_checks()


def _cli(*args: str) -> None:
    """Run the CLI; a clean failure is exit status 2 with a one-line message (raised here as ValueError)."""
    code = main(list(args))
    if code == 2:
        raise ValueError("cli exited 2")


CASES: dict[str, tuple[Callable[[], object], type[BaseException], str]] = {
    # text models
    "float token ids": (lambda: MLM(torch.ones(1, 3)), TypeError, "integer tensor"),
    "1-D token ids": (lambda: MLM(torch.ones(3, dtype=torch.long)), ValueError, r"\(batch, sequence_length\)"),
    "sequence too long": (lambda: MLM(torch.ones(1, 13, dtype=torch.long)), ValueError, "exceeds the model's 12"),
    "token id above vocabulary": (lambda: MLM(torch.tensor([[262]])), ValueError, r"\[0, 262\)"),
    "negative token id": (lambda: MLM(torch.tensor([[-1]])), ValueError, r"\[0, 262\)"),
    "empty sequence": (lambda: MLM(torch.ones(1, 0, dtype=torch.long)), ValueError, "must not be empty"),
    "mask of wrong shape": (lambda: MLM(IDS, torch.ones(2, 4)), ValueError, r"shape \(2, 5\)"),
    "float attention mask": (lambda: MLM(IDS, torch.ones(2, 5)), TypeError, "0/1 integers or booleans"),
    "input_ids and inputs": (lambda: MLM(IDS, inputs=IDS), ValueError, "not both"),
    "output point out of range": (lambda: MLM(IDS, output_points=torch.tensor([12])), ValueError, r"\[0, 12\)"),
    "float output points": (lambda: MLM(IDS, output_points=torch.tensor([1.0])), TypeError, "integer tensor"),
    "labels of wrong shape": (lambda: MLM(IDS, labels=torch.zeros(2, 4, dtype=torch.long)), ValueError,
                              "shape of input_ids"),
    "python list as ids": (lambda: MLM([[1, 2]]), TypeError, "torch.Tensor"),
    # images
    "wrong channel count": (lambda: LEARNED(torch.randn(1, 4, 8, 8)), ValueError, "must have 3 channels"),
    "image without batch axis": (lambda: LEARNED(torch.randn(3, 8, 8)), ValueError, r"\(B, C, H, W\)"),
    "uint8 pixels": (lambda: LEARNED(torch.zeros(1, 3, 8, 8, dtype=torch.uint8)), TypeError, "floating-point"),
    "resolution without interpolation": (lambda: LEARNED(torch.randn(1, 3, 10, 8)), ValueError,
                                         "interpolate_pos_encoding=True"),
    "no pixel values": (lambda: LEARNED(), ValueError, "pixel_values is required"),
    "empty image batch": (lambda: LEARNED(torch.randn(0, 3, 8, 8)), ValueError, "must not be empty"),
    # optical flow
    "flow frames with 5 channels": (lambda: FLOW(torch.randn(1, 2, 5, 8, 8)), ValueError, r"3 \(RGB\) or 27"),
    "three frames": (lambda: FLOW(torch.randn(1, 3, 3, 8, 8)), ValueError, "frame pairs"),
    "pixels above range": (lambda: FLOW(torch.full((1, 2, 3, 8, 8), 300.0)), ValueError, "above pixel_range"),
    "points at another size": (lambda: FLOW(torch.randn(1, 2, 27, 9, 9), output_points=torch.tensor([0])),
                               ValueError, "training size"),
    # multimodal
    "missing modality": (lambda: AUTO({"image": VIDEO["image"], "audio": VIDEO["audio"]}, PTS), ValueError,
                         r"missing: \['label'\]"),
    "unknown modality": (lambda: AUTO({**VIDEO, "smell": torch.zeros(1)}, PTS), ValueError, r"unknown: \['smell'\]"),
    "audio not whole patches": (lambda: AUTO({**VIDEO, "audio": torch.randn(1, 15)}, PTS), ValueError,
                                "multiple of samples_per_patch"),
    "stereo audio": (lambda: AUTO({**VIDEO, "audio": torch.randn(1, 16, 2)}, PTS), ValueError, "mono"),
    "label vector size": (lambda: AUTO({**VIDEO, "label": torch.zeros(1, 4)}, PTS), ValueError, r"\(batch, 3\)"),
    "inputs not a dict": (lambda: AUTO(torch.zeros(3), PTS), TypeError, "dict keyed by modality"),
    "unknown output modality": (lambda: AUTO(VIDEO, {"depth": torch.tensor([0])}), ValueError, "unknown modalities"),
    "integer label vector": (lambda: AUTO({**VIDEO, "label": torch.zeros(1, 3, dtype=torch.long)}, PTS), TypeError,
                             "floating-point"),
    # point clouds and generic models
    "points with 2 coordinates": (lambda: POINTS(torch.randn(1, 10, 2)), ValueError, r"\(batch, num_points ≥ 1, 3\)"),
    "no preprocessor, 2-D input": (lambda: pk.PerceiverIO(MLM.perceiver.encoder, MLM.perceiver.decoder)(
        torch.randn(2, 16)), ValueError, r"\(batch, index, channels\)"),
    "non-finite values (opt-in)": (lambda: _checked_mlm().perceiver(torch.tensor([[float("nan")]])), ValueError,
                                   "NaN or infinite"),
    # configurations
    "zero latents": (lambda: EncoderConfig(num_latents=0).validate(), pk.ConfigError, "num_latents must be a positive"),
    "unknown activation": (lambda: EncoderConfig(activation="swiss").validate(), pk.ConfigError, "activation must be"),
    "bad attention shape": (lambda: EncoderConfig(cross_attention_shape_for_attention="qv").validate(),
                            pk.ConfigError, "cross_attention_shape_for_attention"),
    "heads do not divide widths": (lambda: pk.PerceiverEncoder(EncoderConfig(
        num_latents=2, d_latents=10, num_self_attends_per_block=1, num_self_attention_heads=3,
        num_cross_attention_heads=1), 4), ValueError, "divisible by its number of heads"),
    "conv stem downsampling": (lambda: ImagePreprocessorConfig(prep_type="conv", spatial_downsample=2).validate(),
                               pk.ConfigError, "powers of 4"),
    "projection without width": (lambda: DecoderConfig(output_index_dims=(1,), query_channels=4).validate(),
                                 pk.ConfigError, "output_channels is required"),
    "unknown preset": (lambda: pk.create_model("vision-perceiver-huge"), ValueError, "unknown preset"),
    "tile overlap too large": (lambda: pk.OpticalFlowConfig(train_size=(8, 8), tile_overlap=8).validate(),
                               pk.ConfigError, "tile_overlap"),
    "unknown config field": (lambda: pk.config.config_from_dict(EncoderConfig, {"latents": 3}), pk.ConfigError,
                             "unknown field"),
    # tokenizer
    "tokenize a number": (lambda: pk.ByteTokenizer()(42), TypeError, "str"),
    "decode id out of range": (lambda: pk.ByteTokenizer().decode([300]), ValueError, "262"),
    "unknown padding strategy": (lambda: pk.ByteTokenizer()(["a"], padding="sideways"), ValueError, "padding"),
    # pipelines
    "float image array": (lambda: pk.ImageProcessor()(np.zeros((4, 4, 3), np.float32)), TypeError, "uint8"),
    "text without a mask": (lambda: FillMask(MLM)("no mask"), ValueError, r"\[MASK\]"),
    "frames of different sizes": (lambda: FlowEstimation(FLOW)(np.zeros((8, 8, 3), np.uint8),
                                                               np.zeros((9, 8, 3), np.uint8)), ValueError, "same size"),
    "classify nothing": (lambda: ImageClassification(LEARNED)([]), ValueError, "no images"),
    "pipeline for the wrong model": (lambda: FillMask(LEARNED), TypeError, "MaskedLanguageModel"),  # type: ignore
    # checkpoints
    "missing checkpoint directory": (lambda: pk.from_pretrained("./nowhere/model"), pk.CheckpointNotFoundError,
                                     "no checkpoint directory"),
    # training configuration
    "unknown data source": (lambda: __import__("perceiverkit.train.run", fromlist=["x"]).build_datamodule(
        load_train_config("image-classification", None, ["data.source=imagenet-22k"]), LEARNED), pk.ConfigError,
        "unknown data source"),
    "override without value": (lambda: apply_override({}, "optim.lr"), pk.ConfigError, "key.path=value"),
    "learning rate as text": (lambda: load_train_config("masked-lm", None, ["optim.lr=fast"]), pk.ConfigError,
                              "must be a number"),
    # command line (one-line message, exit status 2)
    "cli: image file missing": (lambda: _cli("classify-image", "/no/such.png", "--model", "/no/model"), ValueError,
                                "exited 2"),
    "cli: unknown task": (lambda: _cli("train", "juggling"), ValueError, "exited 2"),
    "cli: one frame for flow": (lambda: _cli("flow", "a.png", "--model", "/no/model"), ValueError, "exited 2"),
}


def test_the_table_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_rejected_clearly(name, capsys):
    call, error, match = CASES[name]
    with pytest.raises(error, match=match):
        call()
    if name.startswith("cli:"):
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("perceiverkit ") and "Traceback" not in err
