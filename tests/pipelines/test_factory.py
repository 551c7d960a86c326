"""``pipeline(task, model, device=, dtype=)``: Transformers' task names, the class each task names in the
registry, one-line errors naming the choices, and the device and dtype it puts the model on."""

from __future__ import annotations

import pytest
import torch

import perceiverkit
from perceiverkit import (
    EncoderConfig,
    MaskedLanguageModel,
    MaskedLanguageModelConfig,
    MultimodalAutoencoder,
    MultimodalAutoencoderConfig,
    OpticalFlow,
    OpticalFlowConfig,
    PositionEncodingConfig,
    SequenceClassifier,
    SequenceClassifierConfig,
)
from perceiverkit.config import ConfigError
from perceiverkit.devices import DeviceError
from perceiverkit.pipelines import (
    Autoencode,
    FillMask,
    FlowEstimation,
    ImageClassification,
    TextClassification,
    pipeline,
    pipeline_tasks,
)
from perceiverkit.processors import ImagePreprocessorConfig
from perceiverkit.tasks import ImageClassifier, ImageClassifierConfig

TINY = EncoderConfig(num_latents=4, d_latents=16, num_self_attends_per_block=1, num_self_attention_heads=2,
                     num_cross_attention_heads=1)


def _mlm() -> MaskedLanguageModel:
    torch.manual_seed(0)
    return MaskedLanguageModel(MaskedLanguageModelConfig(d_model=16, max_position_embeddings=16, encoder=TINY,
                                                         decoder_num_heads=1, decoder_qk_channels=8))


def test_transformers_task_names_pick_each_pipeline():
    models = {
        "fill-mask": (_mlm(), FillMask),
        "text-classification": (SequenceClassifier(SequenceClassifierConfig(
            d_model=16, max_position_embeddings=16, encoder=TINY)), TextClassification),
        "image-classification": (ImageClassifier(ImageClassifierConfig(
            image=ImagePreprocessorConfig(prep_type="conv", spatial_downsample=4, out_channels=8,
                                          position=PositionEncodingConfig(kind="fourier", num_bands=4,
                                                                          max_resolution=(56, 56))),
            encoder=TINY, num_labels=3)), ImageClassification),
        "optical-flow": (OpticalFlow(OpticalFlowConfig(train_size=(12, 16), num_bands=4, patch_features=8,
                                                       tile_overlap=4, encoder=TINY)), FlowEstimation),
        "autoencoding": (MultimodalAutoencoder(MultimodalAutoencoderConfig(
            num_frames=2, image_size=8, image_num_bands=2, audio_num_bands=2, num_labels=3, label_query_channels=4,
            output_num_channels=4, encoder=TINY)), Autoencode),
    }
    assert set(models) <= set(pipeline_tasks())
    for task, (model, cls) in models.items():
        made = perceiverkit.pipeline(task, model)  # the package's face exports it
        assert type(made) is cls and made.model is model and not model.training


def test_a_wrong_task_device_or_dtype_is_one_line_naming_the_choices():
    model = _mlm()
    with pytest.raises(ConfigError) as error:
        pipeline("summarization", model)
    assert "\n" not in str(error.value) and "expected one of" in str(error.value) and "'fill-mask'" in str(error.value)
    with pytest.raises(DeviceError, match=r"unknown device 'tpu'; expected one of \['auto', 'cpu', 'cuda', 'mps'\]"):
        pipeline("fill-mask", model, device="tpu")
    with pytest.raises(DeviceError, match=r"unknown dtype 'float8'; expected one of \['float32', 'bfloat16', "
                                          r"'float16'\]"):
        pipeline("fill-mask", model, dtype="float8")


def test_cuda_without_cuda_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _mlm().save_pretrained(tmp_path)
    with pytest.raises(DeviceError) as error:
        pipeline("fill-mask", tmp_path, device="cuda")  # refused before the checkpoint is read
    assert str(error.value) == ("device 'cuda' is not available: this machine has no CUDA; choose cpu, or auto "
                                "(which picks an accelerator when one is present)")


def test_dtype_string_runs_the_pipeline_in_that_precision(tmp_path):
    model = _mlm()
    model.save_pretrained(tmp_path)
    fill = pipeline("fill-mask", tmp_path, device="auto" if not torch.cuda.is_available() else "cpu",
                    dtype="bfloat16", top_k=2)
    assert fill.model.dtype == torch.bfloat16 and fill.model.device.type == "cpu"
    results = fill("ab[MASK]")
    assert len(results) == 2 and 0 < results[0]["score"] <= 1
    with torch.no_grad():  # the float32 model agrees on the best byte's score to bfloat16's precision
        reference = FillMask(model.eval(), top_k=2)("ab[MASK]")
    assert results[0]["score"] == pytest.approx(reference[0]["score"], rel=0.05)
    assert pipeline("fill-mask", model, dtype=torch.float16).model.dtype == torch.float16  # a loaded model too
