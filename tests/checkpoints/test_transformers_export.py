"""Saving in Transformers' format: ``save_pretrained(dir, format="transformers")`` writes what
``transformers.PerceiverFor….from_pretrained`` loads with our outputs (Transformers is the oracle), for all seven
architectures, both ways round, on random non-default configurations; what Transformers cannot express is refused
in one line naming the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from safetensors.torch import load_file

import perceiverkit
from perceiverkit import ConfigError
from perceiverkit.cli import main
from perceiverkit.config import EncoderConfig, config_from_dict, config_to_dict
from perceiverkit.processors.image import ImagePreprocessorConfig
from perceiverkit.tasks import PointCloudClassifier, PointCloudClassifierConfig, task_for_architecture
from perceiverkit.tasks.flow import OpticalFlow, OpticalFlowConfig
from perceiverkit.tasks.multimodal import MultimodalAutoencoder, MultimodalAutoencoderConfig
from perceiverkit.tasks.text import (
    MaskedLanguageModel,
    MaskedLanguageModelConfig,
    SequenceClassifier,
    SequenceClassifierConfig,
)
from perceiverkit.tasks.vision import IMAGENET_PREPROCESSORS, ImageClassifier, ImageClassifierConfig

from ..helpers import randomize_, relative_error, small_hf_config

T = transformers


def _encoder(**extra: Any) -> EncoderConfig:
    """A small encoder that differs from the defaults in every field Transformers reads."""
    base: dict[str, Any] = dict(num_latents=6, d_latents=48, num_blocks=2, num_self_attends_per_block=2,
                                num_self_attention_heads=4, num_cross_attention_heads=2, qk_channels=32, v_channels=48,
                                self_attention_widening_factor=2, cross_attention_widening_factor=3,
                                activation="gelu_new")
    base.update(extra)
    return EncoderConfig(**base)


def _one_head_encoder(**extra: Any) -> EncoderConfig:
    """For wide inputs (Fourier pixels, flow patches) whose width few head counts divide; default attention widths."""
    return _encoder(num_cross_attention_heads=1, qk_channels=None, v_channels=None, **extra)


def _imagenet(preset: str) -> Callable[[int], ImagePreprocessorConfig]:
    return next(make for (name, _), make in IMAGENET_PREPROCESSORS.items() if name == preset)


def _text_inputs() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 9:] = 0
    return {"input_ids": torch.randint(0, 262, (2, 16), generator=gen), "attention_mask": mask}


def _pixels(size: int) -> Callable[[], dict[str, torch.Tensor]]:
    return lambda: {"pixel_values": torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2))}


def _flow_inputs() -> dict[str, torch.Tensor]:
    return {"inputs": torch.randn(2, 2, 27, 8, 12, generator=torch.Generator().manual_seed(3))}


def _multimodal_inputs() -> dict[str, Any]:
    gen = torch.Generator().manual_seed(4)
    inputs = {"image": torch.rand(2, 2, 3, 8, 8, generator=gen), "audio": torch.randn(2, 32, 1, generator=gen),
              "label": torch.zeros(2, 5)}
    return {"inputs": inputs,
            "subsampled_output_points": {"image": torch.tensor([0, 5, 17, 23]), "audio": torch.tensor([1, 3, 7]),
                                         "label": None}}


@dataclass(frozen=True)
class Case:
    hf_class: type
    hf_config: Callable[[], Any]
    """A non-default Transformers config (for Transformers → ours → Transformers)."""
    our_config: Callable[[], Any]
    """A non-default config of ours (for ours → Transformers → ours)."""
    inputs: Callable[[], dict[str, Any]]


CASES = {
    "masked-lm": Case(
        T.PerceiverForMaskedLM,
        lambda: small_hf_config(qk_channels=32, v_channels=64, num_blocks=2, hidden_act="gelu_new",
                                self_attention_widening_factor=2),
        lambda: MaskedLanguageModelConfig(max_position_embeddings=24, d_model=40, encoder=_encoder()),
        _text_inputs),
    "sequence-classification": Case(
        T.PerceiverForSequenceClassification,
        lambda: small_hf_config(cross_attention_shape_for_attention="q", use_query_residual=False,
                                hidden_act="quick_gelu", id2label={0: "no", 1: "maybe", 2: "yes"}),
        lambda: SequenceClassifierConfig(max_position_embeddings=20, d_model=24, num_labels=4,
                                         labels=("a", "b", "c", "d"), problem_type="single_label_classification",
                                         encoder=_encoder(cross_attention_shape_for_attention="q",
                                                          use_query_residual=False, activation="relu")),
        _text_inputs),
    "image-learned": Case(
        T.PerceiverForImageClassificationLearned,
        lambda: small_hf_config(image_size=12, num_labels=5, num_blocks=2, qk_channels=32, v_channels=64),
        lambda: ImageClassifierConfig(image=_imagenet("vision-perceiver-learned")(12), encoder=_encoder(),
                                      num_labels=5),
        _pixels(12)),
    "image-fourier": Case(
        T.PerceiverForImageClassificationFourier,
        # Transformers' Fourier classifiers never read image_size: a non-square one loads too.
        lambda: small_hf_config(image_size=[10, 14], num_labels=5, num_cross_attention_heads=1, hidden_act="silu"),
        lambda: ImageClassifierConfig(image=_imagenet("vision-perceiver-fourier")(224), num_labels=3,
                                      encoder=_one_head_encoder()),
        _pixels(12)),
    "image-conv": Case(
        T.PerceiverForImageClassificationConvProcessing,
        lambda: small_hf_config(num_labels=5, num_blocks=3, use_query_residual=False),
        lambda: ImageClassifierConfig(image=_imagenet("vision-perceiver-conv")(224), num_labels=7,
                                      encoder=_encoder(cross_attention_shape_for_attention="q")),
        _pixels(24)),
    "optical-flow": Case(
        T.PerceiverForOpticalFlow,
        lambda: small_hf_config(train_size=[8, 12], num_blocks=2, hidden_act="gelu_new", num_self_attention_heads=8),
        lambda: OpticalFlowConfig(train_size=(8, 12), tile_overlap=2, encoder=_one_head_encoder()),
        _flow_inputs),
    "multimodal-autoencoding": Case(
        T.PerceiverForMultimodalAutoencoding,
        # Positions are encoded at (num_frames, image_size, image_size) = (2, 8, 8); the decoded grid is 1×4×6.
        lambda: small_hf_config(num_latents=8, d_latents=32, num_self_attends_per_block=1, num_self_attention_heads=2,
                                num_cross_attention_heads=1, num_frames=2, audio_samples_per_frame=16,
                                samples_per_patch=4, image_size=8, output_shape=[1, 1, 4, 6], num_labels=5,
                                output_num_channels=12, _label_trainable_num_channels=20),
        lambda: MultimodalAutoencoderConfig(num_frames=2, image_size=8, audio_samples_per_frame=16, samples_per_patch=4,
                                            num_labels=5, label_query_channels=20, output_num_channels=12,
                                            output_grid=(1, 4, 6), encoder=_one_head_encoder(d_latents=32)),
        _multimodal_inputs),
}


def _outputs(model: torch.nn.Module, inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The model's logits (a dict for the autoencoder), called Transformers' way (every model here takes it)."""
    with torch.no_grad():
        logits = model(**inputs).logits
    logits = logits if isinstance(logits, dict) else {"logits": logits}
    if "input_ids" in inputs and logits["logits"].dim() == 3:  # Transformers' MLM decodes every position it has
        logits = {"logits": logits["logits"][:, :inputs["input_ids"].shape[1]]}
    return logits


def _assert_close(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert relative_error(got[name], expected[name]) < 1e-4, name


def _load_hf(cls: type, directory: Path) -> Any:
    model, info = cls.from_pretrained(directory, output_loading_info=True)
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    return model.eval()


@pytest.mark.parametrize("name", sorted(CASES))
def test_transformers_to_ours_to_transformers(save_hf, tmp_path, name):
    case = CASES[name]
    hf, directory = save_hf(case.hf_class, case.hf_config())
    ours = perceiverkit.from_pretrained(directory)
    ours.save_pretrained(tmp_path / "back", format="transformers")
    again = _load_hf(case.hf_class, tmp_path / "back")
    inputs = case.inputs()
    expected = _outputs(hf, inputs)
    _assert_close(_outputs(ours, inputs), expected)
    _assert_close(_outputs(again, inputs), expected)
    original, saved = load_file(directory / "model.safetensors"), load_file(tmp_path / "back" / "model.safetensors")
    assert sorted(saved) == sorted(original)
    for key, tensor in original.items():
        assert torch.equal(saved[key], tensor), key


@pytest.mark.parametrize("name", sorted(CASES))
def test_ours_to_transformers_to_ours(tmp_path, name):
    case = CASES[name]
    config = case.our_config()
    torch.manual_seed(0)
    spec, _ = task_for_architecture(case.hf_class.__name__)  # the task that Transformers' class maps to
    ours = randomize_(spec.build(config)).eval()
    ours.save_pretrained(tmp_path / "hf", format="transformers")
    saved = {p.name for p in (tmp_path / "hf").iterdir()}
    assert {"config.json", "model.safetensors"} <= saved and "perceiverkit.json" not in saved
    hf = _load_hf(case.hf_class, tmp_path / "hf")
    assert hf.num_parameters() == ours.num_parameters()
    inputs = case.inputs()
    expected = _outputs(ours, inputs)
    _assert_close(_outputs(hf, inputs), expected)
    back = perceiverkit.from_pretrained(tmp_path / "hf")
    assert type(back) is type(ours)
    _assert_close(_outputs(back, inputs), expected)


def test_class_names_travel_both_ways(tmp_path):
    ours = SequenceClassifier(CASES["sequence-classification"].our_config())
    ours.save_pretrained(tmp_path, format="transformers")
    hf_config = json.loads((tmp_path / "config.json").read_text())
    assert hf_config["architectures"] == ["PerceiverForSequenceClassification"]
    assert hf_config["id2label"] == {"0": "a", "1": "b", "2": "c", "3": "d"}
    assert T.PerceiverConfig.from_pretrained(tmp_path).id2label == {0: "a", 1: "b", 2: "c", 3: "d"}
    assert perceiverkit.from_pretrained(tmp_path).config.labels == ("a", "b", "c", "d")


def test_multimodal_positions_resolution_is_independent_of_the_decoded_grid(save_hf):
    """Transformers encodes video positions at (num_frames, image_size, image_size) whatever output_shape decodes;
    ours holds both (``output_grid``), with the same parameters, and a full reconstruction has the decoded grid."""
    case = CASES["multimodal-autoencoding"]
    hf, directory = save_hf(case.hf_class, case.hf_config())
    ours = perceiverkit.from_pretrained(directory)
    assert isinstance(ours, MultimodalAutoencoder)
    assert ours.config.video_grid == (2, 8, 8) and ours.config.decoded_grid == (1, 4, 6)
    assert ours.num_parameters() == hf.num_parameters()
    inputs = case.inputs()["inputs"]
    full = ours.reconstruct(inputs, chunk_size=7)
    assert full["image"].shape == (2, 1, 4, 6, 3)
    points = torch.arange(24)
    with torch.no_grad():
        expected = hf(inputs=inputs, subsampled_output_points={"image": points, "audio": torch.arange(8),
                                                                "label": None}).logits
    assert relative_error(full["image"].reshape(2, -1, 3), expected["image"]) < 1e-4


def test_configs_saved_before_output_grid_still_load():
    old = config_to_dict(MultimodalAutoencoderConfig())
    del old["output_grid"]
    config = config_from_dict(MultimodalAutoencoderConfig, old)
    assert config.output_grid is None and config.decoded_grid == config.video_grid == (16, 224, 224)


def _one_line_refusal(model: Any, directory: Path, field: str) -> str:
    with pytest.raises(ConfigError) as error:
        model.save_pretrained(directory, format="transformers")
    message = str(error.value)
    assert field in message and "\n" not in message, message
    assert not directory.exists()  # refused before anything is written
    return message


def test_cost_volume_flow_is_refused_naming_the_field(tmp_path):
    model = OpticalFlow(OpticalFlowConfig(train_size=(8, 12), tile_overlap=2, cost_volume_radius=1,
                                          encoder=_one_head_encoder()))
    message = _one_line_refusal(model, tmp_path / "out", "OpticalFlowConfig.cost_volume_radius")
    assert "PerceiverForOpticalFlow" in message


@pytest.mark.parametrize(("image", "field"), [
    (ImagePreprocessorConfig(prep_type="conv3x3", spatial_downsample=2), "ImageClassifierConfig.image.prep_type"),
    (ImagePreprocessorConfig(prep_type="pixels", in_channels=1, spatial_downsample=1),
     "ImageClassifierConfig.image.in_channels"),
])
def test_image_preprocessors_transformers_lacks_are_refused(tmp_path, image, field):
    model = ImageClassifier(ImageClassifierConfig(image=image, encoder=_one_head_encoder(), num_labels=3))
    _one_line_refusal(model, tmp_path / "out", field)


def test_hard_coded_decoder_settings_are_refused(tmp_path):
    model = MaskedLanguageModel(MaskedLanguageModelConfig(max_position_embeddings=8, d_model=16, decoder_num_heads=4,
                                                          encoder=_encoder()))
    _one_line_refusal(model, tmp_path / "out", "MaskedLanguageModelConfig.decoder_num_heads")


def test_value_width_transformers_cannot_add_up_is_refused(tmp_path):
    model = SequenceClassifier(SequenceClassifierConfig(max_position_embeddings=8, d_model=16,
                                                        encoder=_encoder(v_channels=None)))
    _one_line_refusal(model, tmp_path / "out", "EncoderConfig.v_channels")


def test_task_without_a_transformers_architecture_and_unknown_format_are_refused(tmp_path):
    model = PointCloudClassifier(PointCloudClassifierConfig())
    _one_line_refusal(model, tmp_path / "out", "point")
    text = MaskedLanguageModel(CASES["masked-lm"].our_config())
    with pytest.raises(ConfigError, match=r"format must be one of \['perceiverkit', 'transformers'\], got 'onnx'"):
        text.save_pretrained(tmp_path / "out", format="onnx")


def test_saving_over_our_format_leaves_one_config(tmp_path):
    model = SequenceClassifier(CASES["sequence-classification"].our_config())
    model.save_pretrained(tmp_path)
    model.save_pretrained(tmp_path, format="transformers")
    assert not (tmp_path / "perceiverkit.json").exists()
    assert isinstance(perceiverkit.from_pretrained(tmp_path), SequenceClassifier)


def test_cli_converts_both_ways(save_hf, tmp_path, capsys):
    case = CASES["optical-flow"]
    hf, directory = save_hf(case.hf_class, case.hf_config())
    assert main(["convert", str(directory), str(tmp_path / "ours")]) == 0
    assert (tmp_path / "ours" / "perceiverkit.json").is_file()
    assert main(["convert", str(tmp_path / "ours"), str(tmp_path / "hf"), "--to", "transformers"]) == 0
    assert "in transformers format" in capsys.readouterr().out
    _assert_close(_outputs(_load_hf(case.hf_class, tmp_path / "hf"), case.inputs()), _outputs(hf, case.inputs()))


def test_every_transformers_activation_without_weights_is_ours():
    """A config.json may name any of Transformers' activations; all but the two with learned weights load, and
    compute what Transformers' do."""
    from transformers.activations import ACT2FN

    from perceiverkit.layers import ACTIVATIONS

    with_weights = {name for name in ACT2FN if list(ACT2FN[name].parameters())}
    assert with_weights == {"prelu", "xielu"}
    assert set(ACTIVATIONS) == set(ACT2FN) - with_weights
    x = torch.randn(1000, generator=torch.Generator().manual_seed(5)) * 4
    for name, activation in ACTIVATIONS.items():
        torch.testing.assert_close(activation(x), ACT2FN[name](x), rtol=1e-5, atol=1e-5, msg=name)


def test_an_activation_with_weights_is_refused_naming_the_field(save_hf):
    _, directory = save_hf(T.PerceiverForSequenceClassification, small_hf_config(hidden_act="prelu"))
    with pytest.raises(ConfigError, match=r"EncoderConfig\.activation must be one of .*got 'prelu'"):
        perceiverkit.from_pretrained(directory)


def test_word_tokenizer_transformers_lacks_is_refused(tmp_path):
    """Transformers' format keeps no tokenizer settings, and Transformers tokenizes bytes: a hashed-words classifier
    saved there would reload reading bytes (ids from the wrong vocabulary), so it is refused, naming the setting."""
    settings = {"kind": "words", "num_buckets": 64, "ngrams": 1}
    model = SequenceClassifier(SequenceClassifierConfig(vocab_size=65, max_position_embeddings=8, d_model=16,
                                                        encoder=_encoder()))
    model.tokenizer_settings = settings
    _one_line_refusal(model, tmp_path / "out", "tokenizer")
    model.save_pretrained(tmp_path / "ours")  # our format keeps it
    assert perceiverkit.from_pretrained(tmp_path / "ours").tokenizer_settings == settings


def test_a_failed_transformers_save_leaves_no_temporary_files(tmp_path, monkeypatch):
    from perceiverkit.checkpoints import transformers_export

    def fail(*args: Any, **kwargs: Any) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(transformers_export.json, "dumps", fail)  # after the weights are written
    model = SequenceClassifier(CASES["sequence-classification"].our_config())
    with pytest.raises(OSError, match="disk full"):
        model.save_pretrained(tmp_path, format="transformers")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
