"""Datasets for training and evaluating Perceiver IO models.

System data sets come from Debian packages (``dataset-fashion-mnist``, ``wordnet-base``, ``jargon-text``);
when their files are missing a :class:`DataMissingError` names the package and the path searched. Every
loader also takes a ``root``/``path`` to read a copy elsewhere.
"""

from ._common import DataMissingError
from .digits import Digits
from .fashion_mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    FashionMNIST,
    load_fashion_mnist_arrays,
    random_flip_crop,
    read_idx,
)
from .image_folder import IMAGE_EXTENSIONS, ImageFolder
from .text_corpus import (
    ByteChunks,
    encode_labels,
    read_jargon_file,
    read_labelled_texts,
    read_text_documents,
    wordnet_gloss_corpus,
)
from .wordnet import LEXNAMES, GlossEntry, WordNetLexnames, read_wordnet_glosses, split_gloss

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "IMAGE_EXTENSIONS",
    "LEXNAMES",
    "ByteChunks",
    "DataMissingError",
    "Digits",
    "FashionMNIST",
    "GlossEntry",
    "ImageFolder",
    "WordNetLexnames",
    "encode_labels",
    "load_fashion_mnist_arrays",
    "random_flip_crop",
    "read_idx",
    "read_jargon_file",
    "read_labelled_texts",
    "read_text_documents",
    "read_wordnet_glosses",
    "split_gloss",
    "wordnet_gloss_corpus",
]
