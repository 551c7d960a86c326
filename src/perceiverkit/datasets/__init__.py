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
from .flow_pairs import SyntheticFlowPairs, real_images, smooth_flow, warp
from .image_folder import IMAGE_EXTENSIONS, ImageFolder
from .point_clouds import SHAPES, PointClouds, sample_shape
from .text_corpus import (
    ByteChunks,
    encode_labels,
    read_jargon_file,
    read_labelled_texts,
    read_text_documents,
    wordnet_gloss_corpus,
)
from .video_clips import VideoClips
from .wordnet import LEXNAMES, GlossEntry, WordNetLexnames, read_wordnet_glosses, split_gloss

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "IMAGE_EXTENSIONS",
    "LEXNAMES",
    "SHAPES",
    "ByteChunks",
    "DataMissingError",
    "Digits",
    "FashionMNIST",
    "GlossEntry",
    "ImageFolder",
    "PointClouds",
    "SyntheticFlowPairs",
    "VideoClips",
    "WordNetLexnames",
    "encode_labels",
    "load_fashion_mnist_arrays",
    "random_flip_crop",
    "read_idx",
    "read_jargon_file",
    "read_labelled_texts",
    "read_text_documents",
    "read_wordnet_glosses",
    "real_images",
    "sample_shape",
    "smooth_flow",
    "split_gloss",
    "warp",
    "wordnet_gloss_corpus",
]
