"""LightningDataModules, one per data source. Each builds train/val datasets and the batch layout its task
model expects (``pixel_values``/``input_ids``/``points``/... plus ``labels``). Each task names the sources it
trains on in its :class:`~perceiverkit.tasks.registry.TaskSpec` (``data_sources``)."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..config import ConfigError
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
                raise ConfigError(f"the data has {len(names)} classes but the model has {model.config.num_labels}; "
                                  "set model.config.num_labels")
            model.config = dataclasses.replace(model.config, labels=tuple(names))

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.val_set = self.build()

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
        if self.test_set is None:
            self.test_set = self.build_test()
        if self.test_set is None:
            raise ConfigError(f"data source {self.source!r} has no test split; evaluate on its validation data "
                              "(validate) instead")
        return self._loader(self.test_set, False, self.eval_collate)


def carve_validation(length: int, size: int | float, seed: int, where: str) -> tuple[list[int], list[int]]:
    """Split ``range(length)`` into (training, validation) indices: ``size`` items (an int) or that fraction (a
    float in (0, 1)) go to validation, chosen by a permutation seeded with ``seed``; both lists come back sorted."""
    if isinstance(size, bool) or not isinstance(size, (int, float)):
        raise ConfigError(f"{where} must be a count or a fraction in (0, 1), got {size!r}")
    count = round(size * length) if isinstance(size, float) and 0 < size < 1 else size
    if not isinstance(count, int) or not 0 < count < length:
        raise ConfigError(f"{where} must leave both splits non-empty (1 … {length - 1} items, or a fraction in "
                          f"(0, 1)); got {size!r}")
    order = torch.randperm(length, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(order[count:]), sorted(order[:count])


# --- images ---------------------------------------------------------------------------------------------------

class FashionMNISTData(PerceiverDataModule):
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

        root = self.option("root")
        augmented = FashionMNIST("train", root=root, augment=self.option("augment", True))
        plain = FashionMNIST("train", root=root)
        train_idx, val_idx = carve_validation(len(plain), self.option("validation_size", 5000),
                                              int(self.option("split_seed", 0)), "data.options.validation_size")
        if self.option("train_limit"):
            train_idx = train_idx[: int(self.option("train_limit"))]
        return torch.utils.data.Subset(augmented, train_idx), torch.utils.data.Subset(plain, val_idx)

    def build_test(self) -> Dataset:
        from ..datasets import FashionMNIST

        return FashionMNIST("test", root=self.option("root"))


class DigitsData(PerceiverDataModule):
    source = "digits"
    options = ("validation_size", "split_seed")
    input_name = "pixel_values"

    def build(self) -> tuple[Dataset, Dataset]:
        """Validation: ``validation_size`` (default a fifth) of the training split. ``split_seed`` (default 0,
        independent of the run's seed) fixes both the train/test split and the validation carve."""
        from ..datasets import Digits

        seed = int(self.option("split_seed", 0))
        train = Digits("train", seed=seed)
        train_idx, val_idx = carve_validation(len(train), self.option("validation_size", 0.2), seed,
                                              "data.options.validation_size")
        return torch.utils.data.Subset(train, train_idx), torch.utils.data.Subset(train, val_idx)

    def build_test(self) -> Dataset:
        from ..datasets import Digits

        return Digits("test", seed=int(self.option("split_seed", 0)))


class ImageFolderData(PerceiverDataModule):
    """Class-per-subfolder images. Training and validation images both go through one
    :class:`~perceiverkit.image_processing.ImageProcessor`, which the trained model saves: from ``image_size`` and
    ``grayscale`` (a bilinear resize and scaling to [0, 1]), or from ``processor``, settings under
    ``preprocessor_config.json`` keys (missing ones take the ImageNet recipe's values; ``num_channels`` defaults
    to the model's). The folder names become the model's class names."""

    source = "image-folder"
    options = ("train_root", "val_root", "image_size", "grayscale", "processor")
    input_name = "pixel_values"

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
                processor = ImageProcessor.plain(check_image_size(self.option("image_size")),
                                                 num_channels=1 if self.option("grayscale") else 3)
        except ValueError as error:
            raise ConfigError(f"data.options: {error}") from None
        if processor.num_channels != channels:
            raise ConfigError(f"the images have {processor.num_channels} channel(s) but the model reads {channels}; "
                              f"set model.config.image.in_channels or data.options.grayscale")
        return processor

    def build(self) -> tuple[Dataset, Dataset]:
        from ..datasets import ImageFolder

        if not self.option("train_root") or not self.option("val_root"):
            raise ConfigError("data source 'image-folder' needs options train_root and val_root")
        processor = self.processor
        train = ImageFolder(self.option("train_root"), processor=processor)
        val = ImageFolder(self.option("val_root"), processor=processor)
        if val.classes != train.classes:
            raise ConfigError(f"the validation folder's classes {val.classes} differ from the training folder's "
                              f"{train.classes}")
        return train, val

    def label_names(self) -> tuple[str, ...] | None:
        return tuple(self.train_set.classes) if self.train_set is not None else None  # type: ignore[attr-defined]

    def prepare_model(self, model: TaskModel[Any]) -> None:
        super().prepare_model(model)
        self.expect(model, ImageClassifier).image_processor = self.processor


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
    source = "wordnet-lexnames"
    options = ("root", *TOKENIZER_OPTIONS)

    def build(self) -> tuple[Dataset, Dataset]:
        from ..datasets import WordNetLexnames

        root = self.option("root")
        return WordNetLexnames("train", root=root, seed=self.seed), WordNetLexnames("val", root=root, seed=self.seed)

    def build_test(self) -> Dataset:
        from ..datasets import WordNetLexnames

        return WordNetLexnames("test", root=self.option("root"), seed=self.seed)

    def label_names(self) -> tuple[str, ...] | None:
        return tuple(self.train_set.classes) if self.train_set is not None else None  # type: ignore[attr-defined]


class _Pairs(Dataset):
    def __init__(self, texts: list[str], labels: list[int]) -> None:
        self.texts, self.labels = texts, labels

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[str, int]:
        return self.texts[i], self.labels[i]


class LabelledTextFilesData(_TextClassificationData):
    """CSV or JSONL files with a text and a label column; labels are mapped to indices in sorted order."""

    source = "text-files"
    options = ("train_path", "val_path", "text_field", "label_field", *TOKENIZER_OPTIONS)
    classes: tuple[str, ...] | None = None

    def label_names(self) -> tuple[str, ...] | None:
        """The training file's label values, sorted: label index i is the i-th."""
        return self.classes

    def build(self) -> tuple[Dataset, Dataset]:
        from ..datasets import read_labelled_texts

        fields = dict(text_field=self.option("text_field", "text"), label_field=self.option("label_field", "label"))
        train_texts, train_labels = read_labelled_texts(self.option("train_path"), **fields)
        val_texts, val_labels = read_labelled_texts(self.option("val_path"), **fields)
        classes = sorted({str(v) for v in train_labels})
        unseen = sorted({str(v) for v in val_labels} - set(classes))
        if unseen:
            raise ConfigError(f"validation labels {unseen} never occur in the training file")
        index = {c: i for i, c in enumerate(classes)}
        self.classes = tuple(classes)
        num_labels = self.expect(self.model_config, SequenceClassifierConfig).num_labels
        if len(classes) != num_labels:
            raise ConfigError(f"the training file has {len(classes)} classes but the model has "
                              f"{num_labels}; set model.config.num_labels")
        return (_Pairs(train_texts, [index[str(v)] for v in train_labels]),
                _Pairs(val_texts, [index[str(v)] for v in val_labels]))


class _IndexedChunks(Dataset):
    def __init__(self, chunks: Dataset) -> None:
        self.chunks = chunks

    def __len__(self) -> int:
        return len(self.chunks)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[int, bytes]:
        return i, self.chunks[i]


class TextCorpusData(PerceiverDataModule):
    """Byte windows of a corpus for masked language modelling, masked afresh each epoch."""

    source = "text-corpus"
    options = ("corpus", "paths", "sequence_length", "mask_probability", "whole_word", "val_fraction")

    def build(self) -> tuple[Dataset, Dataset]:
        from ..datasets import ByteChunks, read_jargon_file, read_text_documents, wordnet_gloss_corpus

        corpus = self.option("corpus", "jargon+wordnet")
        documents: list[str] = []
        for name in corpus.split("+") if corpus else []:
            if name == "jargon":
                documents.append(read_jargon_file())
            elif name == "wordnet":
                documents.extend(wordnet_gloss_corpus())
            elif name != "files":
                raise ConfigError(f"unknown corpus {name!r}; use jargon, wordnet and/or files (with paths)")
        for path in self.option("paths", []) or []:
            documents.extend(read_text_documents(path))
        if not documents:
            raise ConfigError("the text corpus is empty: choose corpus: jargon+wordnet or give paths")
        length = int(self.option("sequence_length", 128)) - 2  # room for [CLS] and [SEP]
        fraction = float(self.option("val_fraction", 0.05))
        train = ByteChunks(documents, length, "train", val_fraction=fraction, seed=self.seed)
        val = ByteChunks(documents, length, "val", val_fraction=fraction, seed=self.seed)
        return _IndexedChunks(train), _IndexedChunks(val)

    def _collate(self, items: list[Any], train: bool) -> dict[str, Tensor]:
        indices, chunks = zip(*items, strict=True)
        offset = ByteTokenizer.num_special_tokens
        ids = torch.tensor([[ByteTokenizer.cls_token_id, *(b + offset for b in chunk), ByteTokenizer.sep_token_id]
                            for chunk in chunks])
        # Masks depend on (seed, epoch, items) only: reproducible, and new every epoch; fixed for validation.
        gen = torch.Generator().manual_seed(hash((self.seed, self.epoch if train else -1, indices)) % 2**62)
        batch = mask_tokens(ids, torch.ones_like(ids), float(self.option("mask_probability", 0.15)),
                            bool(self.option("whole_word", False)), gen)
        return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask, "labels": batch.labels,
                "output_points": batch.output_points}

    def collate(self, items: list[Any]) -> dict[str, Tensor]:
        return self._collate(items, train=True)

    def eval_collate(self, items: list[Any]) -> dict[str, Tensor]:
        return self._collate(items, train=False)


# --- optical flow, point clouds, video ---------------------------------------------------------------------

class FlowPairsData(PerceiverDataModule):
    """Real photos warped by known smooth flow fields, at the model's training size."""

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
    source = "point-clouds"
    options = ("num_points", "train_length", "val_length", "test_length", "noise")
    input_name = "points"

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
    fourth window, training the rest."""

    source = "video-clips"
    options = ("videos", "stride")

    def build(self) -> tuple[Dataset, Dataset]:
        from ..datasets.video_clips import VideoClips

        c = self.expect(self.model_config, MultimodalAutoencoderConfig)
        clips = VideoClips(self.option("videos"), num_frames=c.num_frames, image_size=c.image_size,
                           samples_per_frame=c.audio_samples_per_frame, num_labels=c.num_labels,
                           stride=int(self.option("stride", 2)))
        val_idx = list(range(0, len(clips), 4))
        train_idx = [i for i in range(len(clips)) if i % 4]
        return torch.utils.data.Subset(clips, train_idx), torch.utils.data.Subset(clips, val_idx)

    def collate(self, items: list[Any]) -> dict[str, Tensor]:
        return {key: torch.stack([item[key] for item in items]) for key in items[0]}
