"""Validation is carved out of the training split; the test split is read only by test_dataloader."""

import pytest
import torch

from perceiverkit.config import ConfigError
from perceiverkit.datasets import Digits
from perceiverkit.train.config import DataSpec
from perceiverkit.train.datamodules import DigitsData, PointCloudData, carve_validation


def test_carve_validation_is_seeded_disjoint_and_complete():
    train, val = carve_validation(100, 0.2, seed=3, where="x")
    assert len(val) == 20 and len(train) == 80 and sorted(train + val) == list(range(100))
    assert carve_validation(100, 0.2, seed=3, where="x") == (train, val)
    assert carve_validation(100, 0.2, seed=4, where="x")[1] != val
    assert len(carve_validation(100, 7, seed=0, where="x")[1]) == 7
    for bad in (0, 100, 1.5, -3, "many", True):
        with pytest.raises(ConfigError, match="x must"):
            carve_validation(100, bad, seed=0, where="x")


def _packaged_model_config(name):
    import yaml

    from perceiverkit.config import config_from_dict
    from perceiverkit.resources import resolve_config
    from perceiverkit.tasks.vision import ImageClassifierConfig

    data = yaml.safe_load(resolve_config(name).read_text())
    return config_from_dict(ImageClassifierConfig, data["model"]["config"])


def test_digits_validates_on_training_images_and_tests_on_the_test_split():
    data = DigitsData(DataSpec(source="digits", batch_size=16), _packaged_model_config("digits"), seed=0)
    data.setup("fit")
    train_full, test = Digits("train", seed=0), Digits("test", seed=0)
    # Trace each item back to its position in load_digits(): validation ⊂ training split, disjoint from test.
    val_origin = {train_full.indices[i] for i in data.val_set.indices}
    fit_origin = {train_full.indices[i] for i in data.train_set.indices}
    assert val_origin and not val_origin & fit_origin and not val_origin & set(test.indices)
    assert len(val_origin) == round(0.2 * len(train_full))
    assert data.test_set is None  # fit never reads the test split
    batch = next(iter(data.test_dataloader()))
    assert batch["pixel_values"].shape[1:] == (1, 8, 8)
    assert len(data.test_set) == len(test)


def test_point_clouds_validation_and_test_streams_differ():
    from perceiverkit.tasks.point_cloud import PointCloudClassifierConfig

    spec = DataSpec(source="point-clouds", batch_size=4,
                    options={"num_points": 32, "train_length": 16, "val_length": 8, "test_length": 8})
    data = PointCloudData(spec, PointCloudClassifierConfig(num_labels=8), seed=0)
    data.setup("fit")
    val = next(iter(data.val_dataloader()))["points"]
    test = next(iter(data.test_dataloader()))["points"]
    assert val.shape == test.shape and not torch.equal(val, test)


def test_fashion_mnist_validates_on_unaugmented_training_images():
    from perceiverkit.datasets import FashionMNIST
    from perceiverkit.train.datamodules import FashionMNISTData

    spec = DataSpec(source="fashion-mnist", batch_size=8, options={"augment": True})
    data = FashionMNISTData(spec, _packaged_model_config("fashion-mnist"), seed=0)
    data.setup("fit")
    assert (len(data.train_set), len(data.val_set)) == (55_000, 5_000)
    assert not set(data.train_set.indices) & set(data.val_set.indices)
    assert data.val_set.dataset.split == "train" and not data.val_set.dataset.augment
    assert data.train_set.dataset.augment and data.test_set is None
    # Validation images are the training file's images, unchanged.
    plain = FashionMNIST("train")
    i = data.val_set.indices[0]
    assert torch.equal(data.val_set[0][0], plain[i][0])
    assert len(data.test_dataloader().dataset) == 10_000 and data.test_set.split == "test"


def test_the_validation_carve_does_not_follow_the_run_seed():
    # Stage 2 of a recipe runs with another seed; it must validate on the images stage 1 held out.
    config = _packaged_model_config("digits")
    one, two = (DigitsData(DataSpec(source="digits"), config, seed=seed) for seed in (0, 1))
    one.setup("fit"), two.setup("fit")
    assert one.val_set.indices == two.val_set.indices


def test_digits_refuses_a_model_with_another_number_of_classes():
    import dataclasses

    from perceiverkit.tasks.vision import ImageClassifier

    config = dataclasses.replace(_packaged_model_config("digits"), num_labels=12)
    data = DigitsData(DataSpec(source="digits"), config, seed=0)
    data.setup("fit")
    with pytest.raises(ConfigError, match="10 classes but the model has 12"):
        data.prepare_model(ImageClassifier(config))


@pytest.mark.parametrize(("length", "size", "message"), [
    (3, 0.1, r"a count of 1 … 2 items, or a fraction of the 3 items that rounds to one of those; got 0\.1 "
             r"\(0\.1 of 3 items is 0\)"),
    (3, 0.9, r"got 0\.9 \(0\.9 of 3 items is 3\)"),
    (10, 10, r"a count of 1 … 9 items.*; got 10$"),
    (1, 0.5, r"the training data has 1 item, too few to hold validation data out of"),
])
def test_carve_validation_says_why_a_size_leaves_a_split_empty(length, size, message):
    """A fraction in (0, 1) is a valid kind of value: when it rounds to no item (a tiny folder) the line says so
    instead of asking for a fraction in (0, 1)."""
    with pytest.raises(ConfigError, match=message):
        carve_validation(length, size, 0, "data.options.validation_size")
