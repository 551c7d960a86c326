"""Models from training runs: a Lightning ``.ckpt`` written by perceiverkit training, and a run's output folder,
load through ``from_pretrained`` (and so through ``TaskModel.from_pretrained`` and the pipelines) as the model the
training module held, with the processor settings that ``model/`` keeps.

The oracle is the trained Lightning module itself: its model's logits on the validation images, computed in the
training process, before anything was written."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

import perceiverkit
from perceiverkit.checkpoints import CheckpointNotFoundError, WrongTaskError, from_pretrained
from perceiverkit.checkpoints.training_runs import RECORD_KEY, model_record
from perceiverkit.config import EncoderConfig
from perceiverkit.datasets import ImageFolder
from perceiverkit.image_processing import ImageProcessor
from perceiverkit.pipelines import pipeline
from perceiverkit.tasks.text import SequenceClassifier, SequenceClassifierConfig
from perceiverkit.tasks.vision import ImageClassifier
from perceiverkit.train import load_train_config, train

from ..train.test_image_folder_roundtrip import CLASSES, _config, folders  # noqa: F401 (a fixture)


class KeepModule(L.Callback):
    """Keeps the trained module and its model's logits on fixed images at the end of training (the oracle)."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images
        self.logits: torch.Tensor | None = None

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        model = pl_module.model
        was_training = model.training
        model.eval()
        with torch.no_grad():
            self.logits = model(pixel_values=self.images).logits.clone()
        model.train(was_training)


@pytest.fixture(scope="module")
def run(tmp_path_factory, folders: Path) -> tuple[Path, KeepModule, Path]:  # noqa: F811
    """A finished 6-step image-folder run (12×12 bilinear preprocessing, 3 named classes) with a best
    checkpoint kept by validation loss beside ``last.ckpt``; returns (run folder, oracle, image folders)."""
    root = folders
    out = tmp_path_factory.mktemp("runs") / "run"
    config = load_train_config(None, _config(root, out, image_size=12),
                               ["trainer.max_steps=6", "trainer.val_check_interval=2"])
    processor = ImageProcessor.plain((12, 12), num_channels=3)
    validation = ImageFolder(root / "val", processor=processor)
    images = torch.stack([validation[i][0] for i in range(len(validation))])
    oracle = KeepModule(images)
    best = L.pytorch.callbacks.ModelCheckpoint(dirpath=out / "checkpoints", monitor="val/loss", save_top_k=1,
                                               filename="mine-{step}")
    train(config, callbacks=[oracle, best])
    return out, oracle, root


def _logits(model: ImageClassifier, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(pixel_values=images).logits


def test_last_ckpt_is_the_trained_model_with_its_preprocessing(run):
    out, oracle, _ = run
    checkpoint = out / "checkpoints" / "last.ckpt"
    assert torch.load(checkpoint, weights_only=True)["global_step"] == 6  # saved after the last step
    model = from_pretrained(checkpoint)
    finished = from_pretrained(out / "model")
    assert isinstance(model, ImageClassifier) and not model.training
    torch.testing.assert_close(_logits(model, oracle.images), oracle.logits, rtol=1e-5, atol=1e-6)
    assert model.label_names == CLASSES == finished.label_names
    assert model.image_processor == finished.image_processor == ImageProcessor.plain((12, 12), num_channels=3)
    assert model.config == finished.config
    # The same model through the class method and a pipeline, by path.
    assert isinstance(ImageClassifier.from_pretrained(str(checkpoint)), ImageClassifier)
    first = str(ImageFolder(run[2] / "val").samples[0][0])
    ranked = pipeline("image-classification", model=str(checkpoint), top_k=3)(first)
    expected = oracle.logits[0].softmax(-1)
    assert {r["label"]: r["score"] for r in ranked} == pytest.approx(
        dict(zip(CLASSES, expected.tolist(), strict=True)), abs=1e-6)


def test_best_checkpoint_is_the_one_lightning_recorded(run, tmp_path, caplog):
    out, _, _ = run
    best = sorted((out / "checkpoints").glob("mine-*.ckpt"))
    assert len(best) == 1
    # A run that did not finish, moved elsewhere: no model/, and the recorded best paths are stale. Only this
    # test's best checkpoint is kept beside last.ckpt (a best file the run itself may keep is removed).
    moved = tmp_path / "moved"
    shutil.copytree(out, moved, ignore=shutil.ignore_patterns("model"))
    for path in (moved / "checkpoints").glob("*.ckpt"):
        if path.name not in (best[0].name, "last.ckpt"):
            path.unlink()
    with caplog.at_level(logging.INFO, logger="perceiverkit.checkpoints.training_runs"):
        model = from_pretrained(moved)
    assert f"best checkpoint {moved / 'checkpoints' / best[0].name}" in caplog.text
    state = torch.load(best[0], weights_only=True)["state_dict"]
    torch.testing.assert_close(model.state_dict(), {k.removeprefix("model."): v for k, v in state.items()})
    # Without the best checkpoint, the last one.
    (moved / "checkpoints" / best[0].name).unlink()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="perceiverkit.checkpoints.training_runs"):
        from_pretrained(moved)
    assert "no best checkpoint; loading" in caplog.text and "last.ckpt" in caplog.text


def test_finished_run_loads_its_model_folder(run, caplog):
    out, oracle, _ = run
    with caplog.at_level(logging.INFO, logger="perceiverkit.checkpoints.training_runs"):
        model = perceiverkit.from_pretrained(out)
    assert f"loading the finished model {out / 'model'}" in caplog.text
    torch.testing.assert_close(_logits(model, oracle.images), oracle.logits, rtol=1e-5, atol=1e-6)


def test_run_without_any_checkpoint_is_one_line(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(CheckpointNotFoundError, match="has neither a finished model/ nor a checkpoint"):
        from_pretrained(tmp_path)


def test_ckpt_of_another_task_is_refused(run):
    with pytest.raises(WrongTaskError, match="'image-classification'; expected task 'masked-lm'"):
        from_pretrained(run[0] / "checkpoints" / "last.ckpt", task="fill-mask")


def test_foreign_lightning_checkpoint_names_what_is_missing(tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"layer.weight": torch.zeros(2, 2)}, "epoch": 0, "global_step": 3}, path)
    with pytest.raises(CheckpointNotFoundError, match=f"has no perceiverkit model record \\(checkpoint key "
                                                      f"'{RECORD_KEY}'"):
        from_pretrained(path)


def test_ckpt_that_needs_unpickling_code_is_refused(tmp_path):
    path = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": {}, "hook": ImageProcessor.plain((4, 4))}, path)  # an arbitrary object
    with pytest.raises(CheckpointNotFoundError, match="with weights_only=True"):
        from_pretrained(path)


def test_other_files_are_still_refused_with_the_choices(tmp_path):
    path = tmp_path / "weights.pt"
    path.write_bytes(b"\0")
    with pytest.raises(CheckpointNotFoundError, match=r"a Lightning \.ckpt of a perceiverkit training run"):
        from_pretrained(path)


def test_text_classifier_keeps_its_tokenizer_through_the_record(tmp_path):
    # The record is generic: a text model keeps its settings in perceiverkit.json, not in a file.
    encoder = EncoderConfig(num_latents=4, d_latents=16, num_self_attends_per_block=1, num_self_attention_heads=1,
                            num_cross_attention_heads=1)
    config = SequenceClassifierConfig(vocab_size=1 + 64, max_position_embeddings=16, d_model=16, encoder=encoder,
                                      num_labels=2, labels=("no", "yes"))
    model = SequenceClassifier(config).eval()
    model.tokenizer_settings = {"kind": "words", "num_buckets": 64, "ngrams": 1}
    path = tmp_path / "text.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                RECORD_KEY: model_record(model)}, path)
    loaded = from_pretrained(path)
    assert isinstance(loaded, SequenceClassifier) and loaded.tokenizer_settings == model.tokenizer_settings
    batch = model.make_tokenizer()(["a cat sat", "dogs bark loudly"], padding=True)
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch["input_ids"], batch["attention_mask"]).logits,
                                   model(batch["input_ids"], batch["attention_mask"]).logits, rtol=0, atol=0)


def test_preset_name_is_not_a_checkpoint():
    with pytest.raises(CheckpointNotFoundError, match=r"names a preset .* deepmind/language-perceiver"):
        from_pretrained("language-perceiver")


def test_record_survives_yaml_free_weights_only_load(run):
    # Nothing but plain values: the record itself loads under weights_only=True and names the task and labels.
    record = torch.load(run[0] / "checkpoints" / "last.ckpt", weights_only=True)[RECORD_KEY]
    assert record["task"] == "image-classification" and tuple(record["config"]["labels"]) == CLASSES
    assert yaml.safe_load(record["processor_files"]["preprocessor_config.json"])["size"] == {"height": 12,
                                                                                              "width": 12}
