"""LightningDataModules, one per data source. Each builds train/val datasets and the batch layout its task
model expects (``pixel_values``/``input_ids``/``points``/... plus ``labels``). Each task names the sources it
trains on in its :class:`~perceiverkit.tasks.registry.TaskSpec` (``data_sources``)."""

from __future__ import annotations

import abc
import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..config import ConfigError
from ..errors import PerceiverKitError
from ..image_processing import ImageProcessor
from ..tasks.base import TaskConfig, TaskModel
from ..tasks.flow import OpticalFlowConfig
from ..tasks.multimodal import MultimodalAutoencoderConfig
from ..tasks.point_cloud import PointCloudClassifierConfig
from ..tasks.text import SequenceClassifier, SequenceClassifierConfig, TextConfig, make_tokenizer
from ..tasks.vision import ImageClassifier, ImageClassifierConfig
from ..tokenizer import ByteTokenizer
from ..word_tokenizer import WordHashTokenizer
from .config import DataSpec
from .masking import mask_tokens
from .samplers import EpochSeededSampler

T = TypeVar("T")


class ClassCountError(ConfigError):
    """The data's number of classes is not the model's ``num_labels``. Training answers it by naming the setting
    to change; evaluating a trained model cannot change it, so ``evaluate`` words it from ``classes`` and
    ``num_labels`` instead (the fix there is other data, not another setting)."""

    def __init__(self, message: str, classes: Sequence[object], num_labels: int) -> None:
        super().__init__(message)
        self.classes, self.num_labels = list(classes), num_labels


class PerceiverDataModule(L.LightningDataModule, abc.ABC):
    """Base: subclasses set ``source`` and implement :meth:`build` (and :meth:`collate` if items need it)."""

    source: ClassVar[str]
    options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: DataSpec, model_config: TaskConfig, seed: int = 0) -> None:
        super().__init__()
        unknown = sorted(set(spec.options) - set(self.options))
        if unknown:
            raise ConfigError(f"data source {self.source!r} has no option(s) {unknown}; "
                              f"options are {sorted(self.options)}")
        self.spec, self.model_config, self.seed = spec, model_config, seed
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    def option(self, name: str, default: Any = None) -> Any:  # Any: options are parsed YAML
        return self.spec.options.get(name, default)

    def int_option(self, name: str, default: int, minimum: int | None = None) -> int:
        """Option ``name`` as an int (a whole float such as ``1e3`` too), at least ``minimum``; anything else is one
        line naming the option (``int()`` on a string would name neither it nor the fix); null is the default."""
        value = default if self.option(name) is None else self.option(name)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"data.options.{name} must be an int, got {value!r}")
        if minimum is not None and value < minimum:
            raise ConfigError(f"data.options.{name} must be ≥ {minimum}, got {value}")
        return value

    def fraction_option(self, name: str, default: float, *, zero: bool) -> float:
        """Option ``name`` as a number in [0, 1) (``zero``) or (0, 1); null is the default."""
        value = default if self.option(name) is None else self.option(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not (0 <= value < 1 if zero else 0 < value < 1):
            raise ConfigError(f"data.options.{name} must be a number in {'[' if zero else '('}0, 1), got {value!r}")
        return float(value)

    def bool_option(self, name: str, default: bool) -> bool:
        """Option ``name`` as true or false (a string such as ``maybe`` would otherwise count as true); null is the
        default."""
        value = default if self.option(name) is None else self.option(name)
        if not isinstance(value, bool):
            raise ConfigError(f"data.options.{name} must be true or false, got {value!r}")
        return value

    def path_option(self, name: str, kind: str = "file", required: bool = True) -> Path | None:
        """Option ``name`` as an existing path (a ``kind`` of "file", "folder" or "path"); None when absent and
        not ``required``."""
        value = self.option(name)
        if value in (None, ""):
            if required:
                raise ConfigError(f"data source {self.source!r} needs data.options.{name} (a {kind})")
            return None
        return self.existing_path(value, f"data.options.{name}", kind)

    def optional_path(self, name: str) -> Path | None:
        """Option ``name`` resolved against the config file's folder, or None when absent (for the system data
        sets' ``root``, whose readers name the Debian package when the files are missing)."""
        value = self.option(name)
        return None if value in (None, "") else self.spec.resolve_path(value)

    def existing_path(self, value: object, where: str, kind: str = "file") -> Path:
        """``value`` as a path that exists, relative ones from the config file's folder
        (:meth:`DataSpec.resolve_path`), not the working directory; ``where`` names the option in errors."""
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{where} must be a path, got {value!r}")
        path = self.spec.resolve_path(value)
        if not {"file": path.is_file, "folder": path.is_dir, "path": path.exists}[kind]():
            start = f" (relative paths start at {self.spec.base_dir})" if self.spec.base_dir and \
                not Path(value).expanduser().is_absolute() else ""
            raise ConfigError(f"{where}: no {kind} at {path}{start}")
        return path

    def check_classes(self, classes: Sequence[object], where: str) -> None:
        """Refuse a model whose ``num_labels`` is not the number of ``classes`` the data has, before training
        starts (a head too small fails deep inside the loss; one too large trains silently on dead classes)."""
        num_labels = getattr(self.model_config, "num_labels", None)
        if num_labels is not None and num_labels != len(classes):
            shown = ", ".join(map(str, classes[:10])) + (", …" if len(classes) > 10 else "")
            raise ClassCountError(f"{where} has {len(classes)} classes ({shown}) but model.config.num_labels is "
                                  f"{num_labels}; set model.config.num_labels: {len(classes)}", classes, num_labels)

    def validation_carve(self, length: int, default: float = 0.1) -> tuple[list[int], list[int]]:
        """(training, validation) indices of a single folder or file: ``validation_size`` (default a tenth)
        chosen by ``split_seed`` (default 0, independent of the run's seed)."""
        return carve_validation(length, self.option("validation_size", default), self.int_option("split_seed", 0),
                                "data.options.validation_size")

    def expect(self, value: object, kind: type[T]) -> T:
        """``value`` (the model or its config) as the ``kind`` this data source trains; another is refused."""
        if not isinstance(value, kind):
            raise ConfigError(f"data source {self.source!r} needs a {kind.__name__}, got {type(value).__name__}")
        return value

    @abc.abstractmethod
    def build(self) -> tuple[Dataset, Dataset]:
        """The training and validation datasets. Where the data ships a test split, validation is carved out of
        the training split (:func:`carve_validation`) and the test split is left to :meth:`build_test`."""

    def build_test(self) -> Dataset | None:
        """The test split, read only by ``test`` / ``evaluate``; None where the data has none."""
        return None

    def eval_collate(self, items: list[Any]) -> dict[str, Tensor]:
        """The batch layout of validation and test (training may differ, e.g. fresh masks)."""
        return self.collate(items)

    def collate(self, items: list[Any]) -> dict[str, Tensor]:
        xs, ys = zip(*items, strict=True)
        return {self.input_name: torch.stack(list(xs)), "labels": torch.as_tensor(ys)}

    input_name: ClassVar[str] = "inputs"

    def label_names(self) -> tuple[str, ...] | None:
        """The class names in label-index order, when the data names its classes (folder names, label values);
        available after :meth:`setup`."""
        return None

    def prepare_model(self, model: TaskModel[Any]) -> None:
        """Give ``model`` what the data knows about its inputs and outputs, so that ``save_pretrained`` keeps it:
        the class names as the config's ``labels`` (when the config has them), and in subclasses the input
        preprocessing. Call after :meth:`setup`."""
        names = self.label_names()
        if names is not None and "labels" in getattr(model.config, "__dataclass_fields__", {}):
            if len(names) != model.config.num_labels:
                raise ClassCountError(f"the data has {len(names)} classes but the model has "
                                      f"{model.config.num_labels}; set model.config.num_labels: {len(names)}",
                                      names, model.config.num_labels)
            model.config = dataclasses.replace(model.config, labels=tuple(names))

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.val_set = self.build()
        if stage == "test":  # only test reads the test split; a source without one says so here, before any run
            self._test_set()

    def _test_set(self) -> Dataset:
        if self.test_set is None:
            self.test_set = self.build_test()
        if self.test_set is None:
            raise ConfigError(no_test_split(self.source))
        return self.test_set

    def _loader(self, dataset: Dataset, shuffle: bool, collate: Callable[[list[Any]], dict[str, Tensor]],
                train: bool = False) -> DataLoader:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        size = len(dataset)  # type: ignore[arg-type]
        position = self._training_position if train and trainer is not None else None
        sampler = EpochSeededSampler(size, self.seed, shuffle, rank, world, position)
        return DataLoader(dataset, batch_size=self.spec.batch_size, sampler=sampler, collate_fn=collate,
                          num_workers=self.spec.num_workers, persistent_workers=False, drop_last=shuffle)

    def _training_position(self) -> tuple[int, int]:
        """(epoch, items of the global order consumed) from the optimiser step count, which checkpoints keep."""
        trainer = self.trainer
        assert trainer is not None and self.train_set is not None
        world = trainer.world_size
        per_process = len(self.train_set) // world  # type: ignore[arg-type]
        batch = self.spec.batch_size
        batches_per_epoch = per_process // batch if self.spec.shuffle else -(-per_process // batch)
        consumed = trainer.global_step * trainer.accumulate_grad_batches
        epoch, offset = divmod(consumed, max(1, batches_per_epoch))
        return epoch, offset * batch * world

    @property
    def epoch(self) -> int:
        """The current training epoch (from the optimiser step count when training)."""
        return self._training_position()[0] if self.trainer is not None and self.train_set is not None else 0

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None
        return self._loader(self.train_set, self.spec.shuffle, self.collate, train=True)

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None
        return self._loader(self.val_set, False, self.eval_collate)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self._test_set(), False, self.eval_collate)


def no_test_split(source: str) -> str:
    """What ``test`` and ``evaluate`` answer for a data source without a test split (and what to run instead)."""
    return (f"data source {source!r} has no test split; measure its validation data instead (perceiverkit "
            "validate --config CONFIG, or perceiverkit evaluate --split validation)")


@contextlib.contextmanager
def reading_data() -> Iterator[None]:
    """Errors of reading user files (a missing column, an empty CSV, invalid JSON) as one-line config errors:
    the readers name the file and line already."""
    try:
        yield
    except PerceiverKitError:
        raise
    except (ValueError, OSError) as error:
        raise ConfigError(str(error)) from None


def carve_validation(length: int, size: int | float, seed: int, where: str) -> tuple[list[int], list[int]]:
    """Split ``range(length)`` into (training, validation) indices: ``size`` items (an int) or that fraction (a
    float in (0, 1)) go to validation, chosen by a permutation seeded with ``seed``; both lists come back sorted."""
    if isinstance(size, bool) or not isinstance(size, (int, float)):
        raise ConfigError(f"{where} must be a count or a fraction in (0, 1), got {size!r}")
    fraction = isinstance(size, float) and 0 < size < 1
    count = round(size * length) if fraction else size
    if not isinstance(count, int) or not 0 < count < length:
        if length < 2:
            raise ConfigError(f"{where}: the training data has {length} item{'s' if length != 1 else ''}, too few "
                              "to hold validation data out of; give more data, or separate validation data")
        # A fraction in (0, 1) that rounds to no item (or to all of them) would read as a valid value otherwise.
        rounded = f" ({size!r} of {length} items is {count})" if fraction else ""
        raise ConfigError(f"{where} must leave both splits non-empty: a count of 1 … {length - 1} items, or a "
                          f"fraction of the {length} items that rounds to one of those; got {size!r}{rounded}")
    order = torch.randperm(length, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(order[count:]), sorted(order[:count])


# --- images ---------------------------------------------------------------------------------------------------

class FashionMNISTData(PerceiverDataModule):
    """Fashion-MNIST (Debian's ``dataset-fashion-mnist``). Options: ``root`` (a copy elsewhere), ``augment``
    (default true: random flips and crops of training images), ``train_limit`` (train on the first that many),
    ``validation_size`` (default 5,000 training images held out) and ``split_seed`` (default 0)."""

    source = "fashion-mnist"
    options = ("root", "augment", "train_limit", "validation_size", "split_seed")
    input_name = "pixel_values"

    def label_names(self) -> tuple[str, ...]:
        from ..datasets.fashion_mnist import FASHION_MNIST_CLASSES

        return FASHION_MNIST_CLASSES

    def prepare_model(self, model: TaskModel[Any]) -> None:
        from ..datasets.fashion_mnist import FASHION_MNIST_MEAN, FASHION_MNIST_STD

        super().prepare_model(model)
        # What FashionMNIST returns without augmentation: 28×28 grey pixels in [0, 1], standardised.
        self.expect(model, ImageClassifier).image_processor = ImageProcessor.plain(
            (28, 28), num_channels=1, mean=(FASHION_MNIST_MEAN,), std=(FASHION_MNIST_STD,))

    def build(self) -> tuple[Dataset, Dataset]:
        """Validation: ``validation_size`` (default 5,000) of the 60,000 training images, chosen by ``split_seed``
        (default 0, not the run's seed: runs chained from one another must not train on each other's validation
        images), without augmentation; training: the rest (``train_limit`` keeps its first that many)."""
        from ..datasets import FashionMNIST

        root = self.optional_path("root")
        augmented = FashionMNIST("train", root=root, augment=self.bool_option("augment", True))
        plain = FashionMNIST("train", root=root)
        train_idx, val_idx = carve_validation(len(plain), self.option("validation_size", 5000),
                                              self.int_option("split_seed", 0), "data.options.validation_size")
        if self.option("train_limit"):  # null or 0: no limit
            train_idx = train_idx[: self.int_option("train_limit", 0, minimum=1)]
        return torch.utils.data.Subset(augmented, train_idx), torch.utils.data.Subset(plain, val_idx)

    def build_test(self) -> Dataset:
        from ..datasets import FashionMNIST

        return FashionMNIST("test", root=self.optional_path("root"))


class DigitsData(PerceiverDataModule):
    """scikit-learn's 8×8 digits. Options: ``validation_size`` (default a fifth of the training split) and
    ``split_seed`` (default 0: the train/test split and the validation carve)."""

    source = "digits"
    options = ("validation_size", "split_seed")
    input_name = "pixel_values"

    def label_names(self) -> tuple[str, ...]:
        # Naming the ten classes lets prepare_model refuse a model with another num_labels before training.
        return tuple(str(digit) for digit in range(10))

    def build(self) -> tuple[Dataset, Dataset]:
        """Validation: ``validation_size`` (default a fifth) of the training split. ``split_seed`` (default 0,
        independent of the run's seed) fixes both the train/test split and the validation carve."""
        from ..datasets import Digits

        seed = self.int_option("split_seed", 0)
        train = Digits("train", seed=seed)
        train_idx, val_idx = carve_validation(len(train), self.option("validation_size", 0.2), seed,
                                              "data.options.validation_size")
        return torch.utils.data.Subset(train, train_idx), torch.utils.data.Subset(train, val_idx)

    def build_test(self) -> Dataset:
        from ..datasets import Digits

        return Digits("test", seed=self.int_option("split_seed", 0))


class _ImageClassificationData(PerceiverDataModule):
    """Images of a user's data set, prepared by one :class:`~perceiverkit.image_processing.ImageProcessor` in
    training, validation and the saved model: from ``image_size`` and ``grayscale`` (a bilinear resize and
    scaling to [0, 1]), or from ``processor``, settings under ``preprocessor_config.json`` keys (missing ones take
    the ImageNet recipe's values; ``num_channels`` defaults to the model's)."""

    input_name = "pixel_values"
    IMAGE_OPTIONS: ClassVar[tuple[str, ...]] = ("image_size", "grayscale", "processor")

    @property
    def processor(self) -> ImageProcessor:
        """The preprocessing of every image, in training and validation, and of the saved model."""
        from ..datasets.image_folder import check_image_size

        channels = self.expect(self.model_config, ImageClassifierConfig).image.in_channels
        settings = self.option("processor")
        try:
            if settings is not None:
                if self.option("image_size") is not None or self.option("grayscale") is not None:
                    raise ConfigError("data.options.processor sets the image size and channels; drop image_size "
                                      "and grayscale")
                if not isinstance(settings, Mapping):
                    raise ConfigError(f"data.options.processor must be a mapping of preprocessor_config.json "
                                      f"settings, got {settings!r}")
                processor = ImageProcessor.from_dict({"num_channels": channels, **settings})
            else:
                if self.option("image_size") is None:
                    raise ConfigError(f"data source {self.source!r} needs data.options.image_size (e.g. 64, or "
                                      "[height, width]: every image is resized to what the model reads) or "
                                      "data.options.processor")
                processor = ImageProcessor.plain(check_image_size(self.option("image_size")),
                                                 num_channels=1 if self.bool_option("grayscale", False) else 3)
        except ValueError as error:
            if isinstance(error, ConfigError):
                raise
            raise ConfigError(f"data.options: {error}") from None
        if processor.num_channels != channels:
            raise ConfigError(f"the images have {processor.num_channels} channel(s) but the model reads {channels}; "
                              f"set model.config.image.in_channels or data.options.grayscale")
        return processor

    classes: tuple[str, ...] | None = None

    def label_names(self) -> tuple[str, ...] | None:
        return self.classes

    def prepare_model(self, model: TaskModel[Any]) -> None:
        super().prepare_model(model)
        self.expect(model, ImageClassifier).image_processor = self.processor


class ImageFolderData(_ImageClassificationData):
    """Class-per-subfolder images (``train_root/<class>/<image>``; the folder names become the model's class
    names). Options: ``train_root`` (required), ``val_root`` (a folder with the same classes; without it,
    ``validation_size`` of the training images, default a tenth, chosen by ``split_seed``, default 0),
    ``image_size`` + ``grayscale`` or ``processor`` (see :class:`_ImageClassificationData`). Before training,
    every image's header is read: an unreadable file is named."""

    source = "image-folder"
    options = ("train_root", "val_root", "validation_size", "split_seed", *_ImageClassificationData.IMAGE_OPTIONS)

    def build(self) -> tuple[Dataset, Dataset]:
        from ..datasets import ImageFolder

        train_root = self.path_option("train_root", "folder")
        val_root = self.path_option("val_root", "folder", required=False)
        if val_root is not None and self.option("validation_size") is not None:
            raise ConfigError("data.options.validation_size carves validation images out of train_root; drop it "
                              "when val_root is given")
        processor = self.processor
        with reading_data():
            train = ImageFolder(train_root, processor=processor)  # type: ignore[arg-type]
            train.check_readable()
            self.check_classes(train.classes, f"the image folder {train_root}")
            self.classes = tuple(train.classes)
            if val_root is None:
                train_idx, val_idx = self.validation_carve(len(train))
                return torch.utils.data.Subset(train, train_idx), torch.utils.data.Subset(train, val_idx)
            val = ImageFolder(val_root, processor=processor)
            val.check_readable()
        if val.classes != train.classes:
            raise ConfigError(f"the validation folder's classes {val.classes} differ from the training folder's "
                              f"{train.classes}")
        return train, val


# --- text -----------------------------------------------------------------------------------------------------

#: Options that pick a text classifier's tokenizer (every text-classification source takes them).
TOKENIZER_OPTIONS = ("tokenizer", "num_buckets", "ngrams")
TextTokenizer = ByteTokenizer | WordHashTokenizer


def tokenizer_settings(options: Mapping[str, Any]) -> dict[str, Any]:
    """The tokenizer a text-classification run names, as the settings its model saves: ``tokenizer: bytes``
    (default; UTF-8 bytes) or ``tokenizer: words`` (hashed words and word pairs,
    :class:`~perceiverkit.word_tokenizer.WordHashTokenizer`, with ``num_buckets`` and ``ngrams``)."""
    kind = options.get("tokenizer", "bytes")
    if kind == "bytes":
        if any(name in options for name in TOKENIZER_OPTIONS[1:]):
            raise ConfigError("data.options num_buckets/ngrams only apply to tokenizer: words")
        return {"kind": "bytes"}
    if kind == "words":
        return {"kind": "words", "num_buckets": int(options.get("num_buckets", 1 << 17)),
                "ngrams": int(options.get("ngrams", 2))}
    raise ConfigError(f"data.options.tokenizer must be 'bytes' or 'words', got {kind!r}")


def text_tokenizer(options: Mapping[str, Any], model_config: TextConfig) -> TextTokenizer:
    """The tokenizer of :func:`tokenizer_settings`; the model's ``vocab_size`` must match the tokenizer's."""
    settings = tokenizer_settings(options)
    try:
        tokenizer = make_tokenizer(settings, model_config.max_position_embeddings)
    except ValueError as error:
        raise ConfigError(f"data.options: {error}") from None
    if model_config.vocab_size != tokenizer.vocab_size:
        raise ConfigError(f"tokenizer {settings['kind']!r} has {tokenizer.vocab_size} ids but model.config.vocab_size "
                          f"is {model_config.vocab_size}; set model.config.vocab_size: {tokenizer.vocab_size}")
    return tokenizer


class _TextClassificationData(PerceiverDataModule):
    def __init__(self, spec: DataSpec, model_config: TaskConfig, seed: int = 0) -> None:
        super().__init__(spec, model_config, seed)
        self.tokenizer = text_tokenizer(spec.options, self.expect(model_config, SequenceClassifierConfig))

    def prepare_model(self, model: TaskModel[Any]) -> None:
        super().prepare_model(model)
        self.expect(model, SequenceClassifier).tokenizer_settings = tokenizer_settings(self.spec.options)

    def collate(self, items: list[Any]) -> dict[str, Tensor]:
        texts, labels = zip(*items, strict=True)
        batch = self.tokenizer(list(texts), padding=True, truncation=True)  # to max_position_embeddings
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
                "labels": torch.as_tensor(labels)}


class WordNetData(_TextClassificationData):
    """WordNet glosses labelled with their synset's lexicographer class (45; Debian's ``wordnet-base``), in
    fixed train/val/test splits. Options: ``root`` (a copy elsewhere) and the tokenizer options."""

    source = "wordnet-lexnames"
    options = ("root", *TOKENIZER_OPTIONS)

    def build(self) -> tuple[Dataset, Dataset]:
        from ..datasets import WordNetLexnames

        root = self.optional_path("root")
        return WordNetLexnames("train", root=root, seed=self.seed), WordNetLexnames("val", root=root, seed=self.seed)

    def build_test(self) -> Dataset:
        from ..datasets import WordNetLexnames

        return WordNetLexnames("test", root=self.optional_path("root"), seed=self.seed)

    def label_names(self) -> tuple[str, ...] | None:
        return tuple(self.train_set.classes) if self.train_set is not None else None  # type: ignore[attr-defined]


class _LabelledRecords(Dataset):
    """``(text, class index)`` of every record of a labelled file, each text read from disk when asked for."""

    def __init__(self, records: Any, labels: np.ndarray) -> None:  # Any: a datasets.streaming.RecordFile
        self.records, self.labels = records, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[str, int]:
        return self.records.text(i), int(self.labels[i])


class LabelledTextFilesData(_TextClassificationData):
    """CSV or JSONL files with a text and a label column, read record by record (an index of byte offsets in
    memory, each text read when its batch is built). Options: ``train_path`` (required), ``val_path`` (without
    it, ``validation_size`` of the training records, default a tenth, chosen by ``split_seed``, default 0),
    ``text_field`` (default ``text``) and ``label_field`` (default ``label``), and the tokenizer options. Labels
    become class indices in sorted order (numbers numerically, strings alphabetically)."""

    source = "text-files"
    options = ("train_path", "val_path", "validation_size", "split_seed", "text_field", "label_field",
               *TOKENIZER_OPTIONS)
    classes: tuple[str, ...] | None = None

    def label_names(self) -> tuple[str, ...] | None:
        """The training file's label values, sorted: label index i is the i-th."""
        return self.classes

    def build(self) -> tuple[Dataset, Dataset]:
        from ..datasets.streaming import RecordFile

        train_path = self.path_option("train_path")
        val_path = self.path_option("val_path", required=False)
        if val_path is not None and self.option("validation_size") is not None:
            raise ConfigError("data.options.validation_size carves validation records out of train_path; drop it "
                              "when val_path is given")
        fields = dict(text_field=str(self.option("text_field", "text")),
                      label_field=str(self.option("label_field", "label")))
        with reading_data():
            train = RecordFile(train_path, **fields)  # type: ignore[arg-type]
        values = sorted(train.label_values)  # one kind per file (RecordFile checks)
        self.check_classes(values, f"the training file {train_path}")
        index = {value: i for i, value in enumerate(values)}
        self.classes = tuple(str(v) for v in values)
        # Codes are in first-seen order; this maps them to the sorted class indices.
        by_code = np.array([index[v] for v in train.label_values], dtype=np.int64)
        train_labels = by_code[train.label_codes]
        if val_path is None:
            train_idx, val_idx = self.validation_carve(len(train))
            pairs = _LabelledRecords(train, train_labels)
            return torch.utils.data.Subset(pairs, train_idx), torch.utils.data.Subset(pairs, val_idx)
        with reading_data():
            val = RecordFile(val_path, **fields)  # type: ignore[arg-type]
        unseen = [v for v in val.label_values if v not in index]
        if unseen:
            raise ConfigError(f"labels {sorted(unseen)[:10]} of the validation file {val_path} never occur in "
                              f"the training file {train_path}")
        val_by_code = np.array([index[v] for v in val.label_values], dtype=np.int64)
        return _LabelledRecords(train, train_labels), _LabelledRecords(val, val_by_code[val.label_codes])


class _IndexedChunks(Dataset):
    def __init__(self, chunks: Dataset) -> None:
        self.chunks = chunks

    def __len__(self) -> int:
        return len(self.chunks)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[int, bytes]:
        return i, self.chunks[i]


class TextCorpusData(PerceiverDataModule):
    """Byte windows of a corpus for masked language modelling, masked afresh each epoch. Options: ``corpus``
    (``jargon``, ``wordnet``, both joined by ``+`` (the default), or ``files`` for only ``paths``), ``paths``
    (``.txt`` files read as their bytes, window by window; ``.jsonl``/``.csv`` files one document per record, from
    ``text_field``, default ``text``), ``sequence_length`` (default 128, [CLS] and [SEP] included),
    ``val_fraction`` (default 0.05: a contiguous region of the bytes at a position seeded by the run's seed),
    ``mask_probability`` (default 0.15) and ``whole_word``. Files are never loaded whole: windows are read from
    disk as batches are built, so a corpus larger than memory trains in flat memory, and exact resume holds
    (window ``i`` is the same bytes in every run)."""

    source = "text-corpus"
    options: ClassVar[tuple[str, ...]] = ("corpus", "paths", "text_field", "sequence_length", "mask_probability",
                                          "whole_word", "val_fraction")

    def corpus(self) -> Any:  # Any: a datasets.streaming.ByteSource
        """The corpus as one byte stream, read on demand."""
        from ..datasets import read_jargon_file, wordnet_gloss_corpus
        from ..datasets.streaming import ConcatBytes, MemoryBytes, RecordDocuments, RecordFile, TextFileBytes

        corpus = self.option("corpus", "jargon+wordnet")
        documents: list[str] = []
        for name in corpus.split("+") if corpus else []:
            if name == "jargon":
                documents.append(read_jargon_file())
            elif name == "wordnet":
                documents.extend(wordnet_gloss_corpus())
            elif name != "files":
                raise ConfigError(f"unknown corpus {name!r}; use jargon, wordnet and/or files (with paths)")
        sources: list[Any] = [MemoryBytes("\n\n".join(documents).encode("utf-8"))] if documents else []
        paths = self.option("paths", []) or []
        if isinstance(paths, str):
            paths = [paths]
        field = str(self.option("text_field", "text"))
        for i, value in enumerate(paths):
            path = self.existing_path(value, f"data.options.paths[{i}]")
            with reading_data():
                if path.suffix.lower() == ".txt":
                    sources.append(TextFileBytes(path))
                elif path.suffix.lower() in (".jsonl", ".csv"):
                    sources.append(RecordDocuments(RecordFile(path, field, measure=True)))
                else:
                    raise ConfigError(f"data.options.paths: {path} is not a .txt, .jsonl or .csv file")
        if not sources:
            raise ConfigError("the text corpus is empty: choose corpus: jargon+wordnet or give paths")
        return sources[0] if len(sources) == 1 else ConcatBytes(sources)

    def build(self) -> tuple[Dataset, Dataset]:
        return self.windows(self.corpus())

    def windows(self, corpus: Any, validation: Any = None) -> tuple[Dataset, Dataset]:
        """Training and validation windows of ``corpus`` (a byte source): validation from ``validation`` when
        given, else the seeded ``val_fraction`` region of ``corpus``."""
        from ..datasets import ByteChunks

        length = self.int_option("sequence_length", 128, minimum=3) - 2  # room for [CLS] and [SEP]
        fraction = self.fraction_option("val_fraction", 0.05, zero=True)
        self.fraction_option("mask_probability", 0.15, zero=False)  # read per batch; checked before any is made
        self.bool_option("whole_word", False)
        with reading_data():
            if validation is not None:
                train = ByteChunks(corpus, length, "train", val_fraction=0.0, seed=self.seed)
                val = ByteChunks(validation, length, "train", val_fraction=0.0, seed=self.seed)
            else:
                train = ByteChunks(corpus, length, "train", val_fraction=fraction, seed=self.seed)
                val = ByteChunks(corpus, length, "val", val_fraction=fraction, seed=self.seed)
        return _IndexedChunks(train), _IndexedChunks(val)

    def _collate(self, items: list[Any], train: bool) -> dict[str, Tensor]:
        indices, chunks = zip(*items, strict=True)
        offset = ByteTokenizer.num_special_tokens
        ids = torch.tensor([[ByteTokenizer.cls_token_id, *(b + offset for b in chunk), ByteTokenizer.sep_token_id]
                            for chunk in chunks])
        # Masks depend on (seed, epoch, items) only: reproducible, and new every epoch; fixed for validation.
        gen = torch.Generator().manual_seed(hash((self.seed, self.epoch if train else -1, indices)) % 2**62)
        batch = mask_tokens(ids, torch.ones_like(ids), self.fraction_option("mask_probability", 0.15, zero=False),
                            self.bool_option("whole_word", False), gen)
        return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask, "labels": batch.labels,
                "output_points": batch.output_points}

    def collate(self, items: list[Any]) -> dict[str, Tensor]:
        return self._collate(items, train=True)

    def eval_collate(self, items: list[Any]) -> dict[str, Tensor]:
        return self._collate(items, train=False)


# --- Hugging Face datasets -----------------------------------------------------------------------------------

#: Options every ``hf-dataset`` source takes (see :class:`_HFData`).
HF_OPTIONS = ("path", "name", "data_files", "cache_dir", "train_split", "val_split", "test_split",
              "validation_size", "split_seed")
#: Split names taken for validation, in order, when ``val_split`` is not given.
VALIDATION_SPLITS = ("validation", "valid", "val", "dev")


class _HFData(PerceiverDataModule):
    """A data set read with Hugging Face ``datasets`` (the ``[datasets]`` extra), memory-mapped
    (:func:`perceiverkit.datasets.hf.load_splits`). Options:

    - ``path``: a local ``.arrow``/``.parquet``/``.csv``/``.json``/``.jsonl`` file, a folder of them (split names
      from the file names: ``train.csv``, ``test.csv``, …), a folder written by ``save_to_disk``, or a hub name
      (with ``name``, its configuration; needs a network) — or ``data_files``: split name → file or files;
    - ``cache_dir``: where ``datasets`` keeps the Arrow files it converts to (its own cache by default);
    - ``train_split`` (default ``train``), ``val_split`` (default: the first of validation/valid/val/dev that
      exists; when none does, ``validation_size`` of the training split, default a tenth, chosen by
      ``split_seed``, default 0), ``test_split`` (default ``test`` when it exists; read only by test/evaluate).
    """

    _splits: dict[str, Any] | None = None

    def splits(self) -> dict[str, Any]:  # Any: datasets.Dataset, an optional extra
        """Every split of the data set, loaded once."""
        if self._splits is None:
            from ..datasets.hf import load_splits

            path, files = self.option("path"), self.option("data_files")
            if (path is None) == (files is None):
                raise ConfigError(f"data source {self.source!r} needs data.options.path (files, a folder or a hub "
                                  "name) or data.options.data_files (split name → files), not both")
            data_files = None
            if files is not None:
                if not isinstance(files, Mapping) or not files:
                    raise ConfigError(f"data.options.data_files must map split names to files, got {files!r}")
                data_files = {str(split): [self.existing_path(f, f"data.options.data_files.{split}")
                                           for f in ([names] if isinstance(names, str) else names)]
                              for split, names in files.items()}
            else:
                if not isinstance(path, str):
                    raise ConfigError(f"data.options.path must be a path or a hub name, got {path!r}")
                resolved = self.spec.resolve_path(path)
                # A path that exists, or that looks like one, is local; anything else is a hub name.
                local = resolved.exists() or path.startswith((".", "/", "~")) or Path(path).suffix != ""
                if local:
                    self.existing_path(path, "data.options.path", "path")
                path = str(resolved) if local else path
            cache = self.option("cache_dir")
            with reading_data():
                self._splits = load_splits(path or "", local=files is not None or local, name=self.option("name"),
                                           data_files=data_files,
                                           cache_dir=self.spec.resolve_path(cache) if cache else None)
        return self._splits

    def split(self, option: str, default: str | None) -> Any:
        """The split named by ``option`` (or ``default``), refused in one line when the data set lacks it."""
        splits = self.splits()
        name = self.option(option, default)
        if name not in splits:
            raise ConfigError(f"the data set has no split {name!r} (splits: {sorted(splits)}); set "
                              f"data.options.{option}")
        return splits[name]

    def train_and_validation(self) -> tuple[Any, Any]:
        """The training split and the validation split: named, found by name, or carved from training."""
        train = self.split("train_split", "train")
        if self.option("val_split") is not None:
            if self.option("validation_size") is not None:
                raise ConfigError("data.options.validation_size carves validation rows out of the training split; "
                                  "drop it when val_split is given")
            return train, self.split("val_split", None)
        found = next((name for name in VALIDATION_SPLITS if name in self.splits()), None)
        if found is not None and self.option("validation_size") is None:
            return train, self.splits()[found]
        train_idx, val_idx = self.validation_carve(len(train))
        return train.select(train_idx), train.select(val_idx)

    def test_split(self) -> Any | None:
        """The test split: ``test_split`` when set, else ``test`` when the data set has one."""
        if self.option("test_split") is not None:
            return self.split("test_split", None)
        return self.splits().get("test")

    def columns(self, dataset: Any, **columns: str) -> None:
        from ..datasets.hf import check_columns

        with reading_data():
            check_columns(dataset, columns, "the data set")


class _HFLabelled(Dataset):
    """``(input, class index)`` rows of a split: ``read`` turns the input cell into what the collate takes."""

    def __init__(self, dataset: Any, input_column: str, label_column: str, index: dict[Any, int] | None,
                 read: Callable[[Any], Any] | None = None) -> None:
        self.dataset, self.input_column, self.label_column = dataset, input_column, label_column
        self.index, self.read = index, read

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        row = self.dataset[int(i)]
        label = row[self.label_column]
        value = row[self.input_column]
        return (self.read(value) if self.read is not None else value,
                int(label) if self.index is None else self.index[label])


class _HFClassification(_HFData):
    """What text and image classification share: a label column whose classes become the model's labels."""

    input_option: ClassVar[str]
    input_default: ClassVar[str]
    classes: tuple[str, ...] | None = None
    _index: dict[Any, int] | None = None

    def label_names(self) -> tuple[str, ...] | None:
        return self.classes

    def read_input(self, value: Any) -> Any:
        return value

    def labelled(self, dataset: Any, where: str) -> _HFLabelled:
        input_column = str(self.option(self.input_option, self.input_default))
        label_column = str(self.option("label_column", "label"))
        self.columns(dataset, **{self.input_option: input_column, "label_column": label_column})
        if self.classes is None:
            from ..datasets.hf import class_names

            with reading_data():
                names, self._index = class_names(dataset, label_column)
            self.check_classes(names, where)
            self.classes = tuple(names)
        elif self._index is not None:
            unseen = [v for v in dataset.unique(label_column) if v not in self._index]
            if unseen:
                raise ConfigError(f"labels {unseen[:10]} of {where} never occur in the training split")
        return _HFLabelled(dataset, input_column, label_column, self._index, self.read_input)

    def build(self) -> tuple[Dataset, Dataset]:
        train, val = self.train_and_validation()
        return self.labelled(train, "the training split"), self.labelled(val, "the validation split")

    def build_test(self) -> Dataset | None:
        test = self.test_split()
        if test is None:
            return None
        if self.classes is None:
            self.setup("fit")
        return self.labelled(test, "the test split")


class HFTextClassificationData(_HFClassification, _TextClassificationData):
    """Text classification on a Hugging Face data set (options of :class:`_HFData`): ``text_column`` (default
    ``text``), ``label_column`` (default ``label``: a ``ClassLabel``, whose names become the model's labels, or
    strings/integers, classes in sorted order), and the tokenizer options."""

    source = "hf-dataset"
    options = (*HF_OPTIONS, "text_column", "label_column", *TOKENIZER_OPTIONS)
    input_option, input_default = "text_column", "text"

    def read_input(self, value: Any) -> str:
        return "" if value is None else str(value)


class HFImageClassificationData(_HFClassification, _ImageClassificationData):
    """Image classification on a Hugging Face data set (options of :class:`_HFData`): ``image_column`` (default
    ``image``, an ``Image`` feature), ``label_column`` (default ``label``), and ``image_size`` + ``grayscale`` or
    ``processor``. Every image's header is read before training; an unreadable one is named by its row."""

    source = "hf-dataset"
    options = (*HF_OPTIONS, "image_column", "label_column", *_ImageClassificationData.IMAGE_OPTIONS)
    input_option, input_default = "image_column", "image"

    def labelled(self, dataset: Any, where: str) -> _HFLabelled:
        from ..datasets.hf import image_payloads
        from ..datasets.image_folder import unreadable_image

        column = str(self.option("image_column", "image"))
        self.columns(dataset, image_column=column)
        if type(dataset.features[column]).__name__ != "Image":
            raise ConfigError(f"column {column!r} of {where} holds {dataset.features[column]}, not images; set "
                              "data.options.image_column to an Image column")
        labelled = super().labelled(dataset, where)
        for row, payload in image_payloads(dataset, column):
            reason = "no image data" if payload is None else unreadable_image(payload)
            if reason is not None:
                raise ConfigError(f"cannot read the image in row {row} of {where} ({column!r}): {reason}")
        self._processor = self.processor
        return labelled

    def read_input(self, value: Any) -> Tensor:
        return torch.from_numpy(self._processor.preprocess(value))


class HFTextStreamData(_HFData):
    """A text column (``text_column``, default ``text``) of a Hugging Face data set read as one byte stream per
    split, rows separated by a blank line, row by row from the memory-mapped Arrow files, and cut into windows by
    the subclass's ``windows(corpus, validation)``: validation is the validation split when there is one, else
    the subclass's seeded ``val_fraction`` region of the training split; the test split is read only by test."""

    #: ``windows(corpus, validation=None)``: (training, validation) windows of byte streams, from the other base.
    windows: Callable[..., tuple[Dataset, Dataset]]

    def stream(self, dataset: Any) -> Any:
        from ..datasets.hf import ArrowTextBytes

        column = str(self.option("text_column", "text"))
        self.columns(dataset, text_column=column)
        with reading_data():
            return ArrowTextBytes(dataset, column)

    def build(self) -> tuple[Dataset, Dataset]:
        train = self.stream(self.split("train_split", "train"))
        named = self.option("val_split") or next((n for n in VALIDATION_SPLITS if n in self.splits()), None)
        return self.windows(train, self.stream(self.split("val_split", named)) if named else None)

    def build_test(self) -> Dataset | None:
        test = self.test_split()
        return None if test is None else self.windows(self.stream(test), self.stream(test))[1]


class HFTextCorpusData(HFTextStreamData, TextCorpusData):
    """Masked language modelling on the text column of a Hugging Face data set (options of :class:`_HFData`,
    the stream of :class:`HFTextStreamData`); ``sequence_length``, ``mask_probability``, ``whole_word`` and
    ``val_fraction`` as for ``text-corpus``."""

    source = "hf-dataset"
    options = (*(o for o in HF_OPTIONS if o != "validation_size"), "text_column", "sequence_length",
               "mask_probability", "whole_word", "val_fraction")


# --- optical flow, point clouds, video ---------------------------------------------------------------------

class FlowPairsData(PerceiverDataModule):
    """Real photos warped by known smooth flow fields, at the model's training size. Options: ``train_length``
    (default 20,000 pairs), ``val_length`` (64, from another random stream) and ``max_displacement`` (8 px)."""

    source = "flow-pairs"
    options = ("train_length", "val_length", "max_displacement")

    def build(self) -> tuple[Dataset, Dataset]:
        from ..datasets.flow_pairs import SyntheticFlowPairs

        height, width = self.expect(self.model_config, OpticalFlowConfig).train_size  # validated: two sizes
        size = (height, width)
        shift = float(self.option("max_displacement", 8.0))
        return (SyntheticFlowPairs(size, int(self.option("train_length", 20000)), shift, seed=self.seed),
                SyntheticFlowPairs(size, int(self.option("val_length", 64)), shift, seed=self.seed + 10_000))

    def collate(self, items: list[Any]) -> dict[str, Tensor]:
        return {key: torch.stack([item[key] for item in items]) for key in items[0]}


class PointCloudData(PerceiverDataModule):
    """Points sampled from parametric shapes under random pose, scale and noise. Options: ``num_points`` (256),
    ``train_length`` (6,000), ``val_length`` (600), ``test_length`` (600; a third random stream) and ``noise``
    (0.02)."""

    source = "point-clouds"
    options = ("num_points", "train_length", "val_length", "test_length", "noise")
    input_name = "points"

    def label_names(self) -> tuple[str, ...]:
        from ..datasets.point_clouds import SHAPES

        return SHAPES  # label i is SHAPES[i] (PointClouds' default shapes)

    def build(self) -> tuple[Dataset, Dataset]:
        from ..datasets.point_clouds import PointClouds

        kwargs: dict[str, Any] = dict(num_points=int(self.option("num_points", 256)),
                                      noise=float(self.option("noise", 0.02)), seed=self.seed)
        train = PointClouds("train", length=int(self.option("train_length", 6000)), **kwargs)
        num_labels = self.expect(self.model_config, PointCloudClassifierConfig).num_labels
        if train.num_classes != num_labels:
            raise ConfigError(f"the point-cloud data has {train.num_classes} shape classes but the model has "
                              f"{num_labels}; set model.config.num_labels")
        return train, PointClouds("val", length=int(self.option("val_length", 600)), **kwargs)

    def build_test(self) -> Dataset:
        """Clouds from a third random stream, read only by ``test`` / ``evaluate``."""
        from ..datasets.point_clouds import PointClouds

        return PointClouds("test", length=int(self.option("test_length", 600)),
                           num_points=int(self.option("num_points", 256)),
                           noise=float(self.option("noise", 0.02)), seed=self.seed)


class VideoClipsData(PerceiverDataModule):
    """Windows of real video with audio (by default the bundled Big Buck Bunny clip); validation uses every
    fourth window, training the rest. Options: ``videos`` (video files with audio) and ``stride`` (default 2,
    frames between windows)."""

    source = "video-clips"
    options = ("videos", "stride")

    def build(self) -> tuple[Dataset, Dataset]:
        from ..datasets.video_clips import VideoClips

        c = self.expect(self.model_config, MultimodalAutoencoderConfig)
        listed = self.option("videos") or []
        videos = [self.existing_path(v, f"data.options.videos[{i}]")
                  for i, v in enumerate([listed] if isinstance(listed, str) else listed)]
        clips = VideoClips(videos, num_frames=c.num_frames, image_size=c.image_size,
                           samples_per_frame=c.audio_samples_per_frame, num_labels=c.num_labels,
                           stride=int(self.option("stride", 2)))
        val_idx = list(range(0, len(clips), 4))
        train_idx = [i for i in range(len(clips)) if i % 4]
        return torch.utils.data.Subset(clips, train_idx), torch.utils.data.Subset(clips, val_idx)

    def collate(self, items: list[Any]) -> dict[str, Tensor]:
        return {key: torch.stack([item[key] for item in items]) for key in items[0]}
