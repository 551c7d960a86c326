"""The multimodal preprocessor's factored view: the same inputs as its concatenated array, segment by segment."""

from __future__ import annotations

import torch

from perceiverkit.accel import FactoredInputs, SegmentedInputs
from perceiverkit.config import PositionEncodingConfig
from perceiverkit.processors.audio import AudioPreprocessor
from perceiverkit.processors.image import ImagePreprocessor, ImagePreprocessorConfig
from perceiverkit.processors.label import OneHotPreprocessor
from perceiverkit.processors.multimodal import MultimodalPreprocessor


def _preprocessor(mask_probs):
    image = ImagePreprocessor(ImagePreprocessorConfig(
        prep_type="patches", spatial_downsample=4,
        position=PositionEncodingConfig(kind="fourier", num_bands=3, max_resolution=(2, 4, 4))), video=True)
    audio = AudioPreprocessor(4, PositionEncodingConfig(kind="fourier", num_bands=5, max_resolution=(8,)))
    torch.manual_seed(0)
    return MultimodalPreprocessor({"image": image, "audio": audio, "label": OneHotPreprocessor(5)},
                                  mask_probs=mask_probs)


def _inputs():
    gen = torch.Generator().manual_seed(1)
    return {"image": torch.rand(2, 2, 3, 16, 16, generator=gen), "audio": torch.randn(2, 32, generator=gen),
            "label": torch.eye(5)[:2]}


def test_unmasked_modalities_keep_their_factored_view_with_the_padding_as_constant():
    pre = _preprocessor({"label": 1.0}).eval()(_inputs())
    view = pre.encoder_inputs
    assert isinstance(view, SegmentedInputs)
    audio, image, label = view.segments  # sorted by name, as the inputs are concatenated
    assert isinstance(audio, FactoredInputs) and isinstance(image, FactoredInputs)
    assert not isinstance(label, FactoredInputs)  # replaced by the mask token
    assert audio.constant is not None and image.constant is not None
    assert audio.shape[2] == image.shape[2] == pre.inputs.shape[2]  # padded to the common width by the constant
    torch.testing.assert_close(view.materialize(), pre.inputs, rtol=0, atol=0)


def test_randomly_masked_modalities_are_plain_segments_in_training():
    preprocessor = _preprocessor({"label": 1.0, "image": 0.5}).train()
    pre = preprocessor(_inputs())
    audio, image, _label = pre.encoder_inputs.segments
    assert isinstance(audio, FactoredInputs) and not isinstance(image, FactoredInputs)
    torch.testing.assert_close(pre.encoder_inputs.materialize(), pre.inputs, rtol=0, atol=0)
