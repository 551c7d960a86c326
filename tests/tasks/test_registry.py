"""The task registry: every task declared once and found by name, alias, preset and Transformers architecture."""

from __future__ import annotations

import json

import pytest
import torch

import perceiverkit
from perceiverkit import ConfigError, EncoderConfig
from perceiverkit.checkpoints import from_pretrained
from perceiverkit.pipelines import FillMask, pipeline
from perceiverkit.tasks import (
    PRESETS,
    TASKS,
    MaskedLanguageModel,
    MaskedLanguageModelConfig,
    PointCloudClassifier,
    PointCloudClassifierConfig,
    create_model,
    get_task,
    task_for_architecture,
    task_names,
)
from perceiverkit.tasks.registry import architectures

TINY = EncoderConfig(num_latents=4, d_latents=16, num_self_attends_per_block=1, num_self_attention_heads=2,
                     num_cross_attention_heads=1, attention_dropout=0.0)
TRANSFORMERS_ARCHITECTURES = {
    "PerceiverForMaskedLM": "masked-lm",
    "PerceiverForSequenceClassification": "text-classification",
    "PerceiverForImageClassificationLearned": "image-classification",
    "PerceiverForImageClassificationFourier": "image-classification",
    "PerceiverForImageClassificationConvProcessing": "image-classification",
    "PerceiverForOpticalFlow": "optical-flow",
    "PerceiverForMultimodalAutoencoding": "multimodal-autoencoding",
}


def test_each_task_is_found_by_name_and_alias():
    assert set(TASKS) == {"masked-lm", "text-classification", "image-classification", "optical-flow", "causal-lm",
                          "multimodal-autoencoding", "point-cloud-classification"}
    for name, model_class in TASKS.items():
        spec = get_task(name)
        assert spec.model_class is model_class and model_class.task == name
        assert spec.config_class is model_class.config_class
        for alias in spec.aliases:
            assert get_task(alias) is spec
    assert get_task("mlm").name == "masked-lm" and get_task("flow").name == "optical-flow"


def test_an_unknown_task_is_one_error_listing_the_known_names():
    with pytest.raises(ConfigError, match=r"unknown task 'juggling'; expected one of \[.*'masked-lm'.*'mlm'"):
        get_task("juggling")
    assert set(TASKS) < set(task_names())


def test_each_transformers_architecture_belongs_to_one_task():
    assert architectures() == sorted(TRANSFORMERS_ARCHITECTURES)
    for arch, task in TRANSFORMERS_ARCHITECTURES.items():
        spec, mapping = task_for_architecture(arch)
        assert spec.name == task and mapping.name == arch
    with pytest.raises(ConfigError, match="'PerceiverForJuggling' is not supported; expected one of"):
        task_for_architecture("PerceiverForJuggling")


def test_presets_belong_to_their_tasks_and_build_their_models():
    for name, preset in PRESETS.items():
        spec = get_task(preset.task)
        assert preset in spec.presets
        with torch.device("meta"):  # shapes only
            model = create_model(name)
        assert isinstance(model, spec.model_class)


def test_imagenet_preset_and_transformers_conversion_agree_on_the_preprocessor():
    # One definition of each ImageNet preprocessor serves both the preset and the Transformers conversion.
    for preset, arch in (("vision-perceiver-learned", "PerceiverForImageClassificationLearned"),
                         ("vision-perceiver-fourier", "PerceiverForImageClassificationFourier"),
                         ("vision-perceiver-conv", "PerceiverForImageClassificationConvProcessing")):
        _, mapping = task_for_architecture(arch)
        converted = mapping.config_from_hf({"architectures": [arch], "image_size": 224})
        assert converted.image == PRESETS[preset].make_config().image


def test_training_pieces_resolve_lazily_for_every_task():
    from perceiverkit.train.datamodules import PerceiverDataModule
    from perceiverkit.train.modules import PerceiverModule

    for name in TASKS:
        spec = get_task(name)
        assert issubclass(spec.lightning_module_class(), PerceiverModule)
        assert spec.data_sources, name
        for source in spec.data_sources:
            data_class = spec.data_source_class(source)
            assert issubclass(data_class, PerceiverDataModule) and data_class.source == source
        if spec.pipeline is not None:
            assert callable(spec.pipeline_class())
    with pytest.raises(ConfigError, match="unknown data source 'digits' for task 'masked-lm'"):
        get_task("masked-lm").data_source_class("digits")


def _tiny_mlm() -> MaskedLanguageModel:
    return MaskedLanguageModel(MaskedLanguageModelConfig(vocab_size=262, max_position_embeddings=16, d_model=16,
                                                         encoder=TINY, decoder_num_heads=1, decoder_qk_channels=8))


def test_pipeline_picks_the_class_the_task_names(tmp_path):
    model = _tiny_mlm()
    assert isinstance(pipeline("mlm", model, top_k=2), FillMask)
    model.save_pretrained(tmp_path)
    assert isinstance(pipeline("masked-lm", tmp_path), FillMask)
    with pytest.raises(ValueError, match="holds a model for task 'masked-lm'; expected task 'optical-flow'"):
        pipeline("flow", tmp_path)
    with pytest.raises(ValueError, match="got a model for task 'masked-lm'; expected task 'optical-flow'"):
        pipeline("flow", model)
    with pytest.raises(ValueError, match="task 'point-cloud-classification' has no pipeline"):
        pipeline("point-cloud", PointCloudClassifier(PointCloudClassifierConfig(encoder=TINY)))


def test_from_pretrained_checks_the_task_before_reading_weights(tmp_path):
    _tiny_mlm().save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not read")
    with pytest.raises(ValueError, match="holds a model for task 'masked-lm'; expected task 'image-classification'"):
        from_pretrained(tmp_path, task="image-classification")


def test_point_cloud_checkpoints_saved_with_num_classes_still_load(tmp_path):
    model = PointCloudClassifier(PointCloudClassifierConfig(num_labels=3, num_bands=2, encoder=TINY))
    model.save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "perceiverkit.json").read_text())
    meta["config"]["num_classes"] = meta["config"].pop("num_labels")  # as written before the rename
    (tmp_path / "perceiverkit.json").write_text(json.dumps(meta))
    loaded = perceiverkit.from_pretrained(tmp_path)
    assert loaded.config.num_labels == 3
    torch.testing.assert_close(loaded.state_dict(), model.state_dict())
    meta["config"]["num_labels"] = 3
    (tmp_path / "perceiverkit.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"\['num_classes'\] are old names of \['num_labels'\]"):
        perceiverkit.from_pretrained(tmp_path)

