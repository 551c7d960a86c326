"""Turning images (PIL, numpy arrays or files) into a model's ``pixel_values``, with settings that travel with it.

:class:`ImageProcessor` holds typed settings and reads and writes them as Transformers'
``preprocessor_config.json`` (the keys of its ``PerceiverImageProcessor``, plus ``num_channels``). Its default is
the published ImageNet recipe: centre-crop a square of 224/256 of the shorter side, bicubic-resize to 224×224,
scale to [0, 1] and normalise with the ImageNet mean and standard deviation. Grayscale (one channel) and any
other channel count are supported: files and PIL images are converted to the mode of ``num_channels`` (1, 2, 3
or 4 channels); arrays and tensors may have any number of channels, as long as it is ``num_channels``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch

if TYPE_CHECKING:
    import PIL.Image

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: The file the settings are saved in, next to a model's weights (Transformers' name).
PREPROCESSOR_CONFIG = "preprocessor_config.json"

#: Pillow's resampling filters by the numbers Transformers stores (``PIL.Image.Resampling`` values).
RESAMPLE: dict[str, int] = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}

#: The Pillow mode a file or PIL image is converted to for each channel count that Pillow can hold.
CHANNEL_MODES: dict[int, str] = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}

#: One image: a PIL image, an array or tensor of pixels, or a file path. PIL's class is named in a string
#: because PIL is only imported when an image is loaded.
ImageInput = Union["PIL.Image.Image", np.ndarray, torch.Tensor, str, "os.PathLike[str]"]


def load_image(image: ImageInput, mode: str = "RGB") -> PIL.Image.Image:
    """A PIL image in ``mode`` (RGB by default) from a PIL image, a file path, an ``(H, W[, C])`` uint8 array
    (C of 1, 3 or 4) or a ``(C, H, W)`` uint8 tensor (C of 1 or 3)."""
    from PIL import Image

    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] not in (1, 3):
            raise ValueError(f"image tensors must have shape (channels, height, width), got {tuple(image.shape)}")
    array = _pixels(image, None)
    if array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"image arrays must have shape (height, width) or (height, width, 3|4), got {array.shape}")
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).convert(mode)


def _pixels(image: ImageInput, num_channels: int | None) -> np.ndarray:
    """``(H, W, C)`` uint8 pixels; files and PIL images are converted to ``num_channels``' mode (kept as they
    are when it is None); arrays and tensors must already have ``num_channels`` channels, or 1/3/4 channels that
    Pillow converts."""
    from PIL import Image, UnidentifiedImageError

    mode = CHANNEL_MODES.get(num_channels) if num_channels is not None else None
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"no image file at {path}")
        try:
            with Image.open(path) as opened:
                # convert() decodes the whole file, so truncated data fails here rather than later.
                image = opened.convert(_file_mode(opened.mode, mode, num_channels, str(path)))
        except UnidentifiedImageError:
            raise ValueError(f"{path} is not an image file Pillow can read") from None
    if isinstance(image, Image.Image):
        image = image.convert(_file_mode(image.mode, mode, num_channels, "the PIL image"))
        array = np.asarray(image)
    elif isinstance(image, torch.Tensor):
        if image.dim() != 3:
            raise ValueError(f"image tensors must have shape (channels, height, width), got {tuple(image.shape)}")
        array = image.permute(1, 2, 0).cpu().numpy()
    elif isinstance(image, np.ndarray):
        array = image
    else:
        raise TypeError(f"expected a PIL image, numpy array, torch tensor or file path, got {type(image).__name__}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise ValueError(f"image arrays must have shape (height, width) or (height, width, channels), "
                         f"got {array.shape}")
    if array.dtype != np.uint8:
        raise TypeError(f"image arrays must be uint8 (0-255), got dtype {array.dtype}; convert or pass a PIL image")
    if array.size == 0:
        raise ValueError(f"image must not be empty, got shape {array.shape}")
    channels = array.shape[-1]
    if num_channels is None or channels == num_channels:
        return array
    if mode is not None and channels in CHANNEL_MODES:  # e.g. an RGB array for a grayscale model
        converted = Image.fromarray(array[..., 0] if channels == 1 else array).convert(mode)
        return np.asarray(converted).reshape(*array.shape[:2], num_channels)
    expected = "(height, width, 3|4)" if num_channels == 3 else f"(height, width, {num_channels})"
    raise ValueError(f"image arrays must have shape (height, width) or {expected}, got {array.shape}")


def _file_mode(found: str, wanted: str | None, num_channels: int | None, where: str) -> str:
    if wanted is not None:
        return wanted
    if num_channels is None:
        return found if found in CHANNEL_MODES.values() else "RGB"
    raise ValueError(f"{where} cannot give {num_channels} channels (Pillow holds 1 to 4); pass a "
                     f"(height, width, {num_channels}) uint8 array or a ({num_channels}, height, width) tensor")


def _size(value: Any, key: str) -> tuple[int, int]:
    """``(height, width)`` from an int (square), a pair, or Transformers' ``{"height", "width"}``."""
    if isinstance(value, Mapping):
        if set(value) != {"height", "width"}:
            raise ValueError(f"{key} must be an int, [height, width] or {{'height', 'width'}}, got {dict(value)}")
        value = (value["height"], value["width"])
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair):
        raise ValueError(f"{key} must be a positive int or (height, width), got {value!r}")
    return int(pair[0]), int(pair[1])


def _floats(value: Any, key: str) -> tuple[float, ...]:
    values = (value,) if isinstance(value, (int, float)) else tuple(value)
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{key} must be a number or a list of numbers, got {value!r}")
    return tuple(float(v) for v in values)


# Keys of a preprocessor_config.json that name the processor, not a setting.
_NAME_KEYS = ("image_processor_type", "feature_extractor_type", "processor_class")


@dataclass
class ImageProcessor:
    """Preprocesses images; returns ``{"pixel_values": (B, num_channels, H, W) float32 tensor}``.

    Steps, each switched by its ``do_*`` flag, in Transformers' ``PerceiverImageProcessor`` order: centre-crop
    ``size / crop_size`` of the shorter side (the Perceiver convention: 224/256 keeps 87.5 %), resize to ``size``
    ``(height, width)`` with ``resample`` (a ``PIL.Image.Resampling`` number, see :data:`RESAMPLE`), multiply by
    ``rescale_factor``, normalise with ``image_mean`` / ``image_std`` (one value for every channel, or one per
    channel). Without resizing, images keep their own size (a batch of different sizes is refused).
    """

    do_resize: bool = True
    size: tuple[int, int] = (224, 224)
    resample: int = RESAMPLE["bicubic"]
    do_center_crop: bool = True
    crop_size: tuple[int, int] = (256, 256)
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple[float, ...] = IMAGENET_MEAN
    image_std: tuple[float, ...] = IMAGENET_STD
    num_channels: int = 3
    _mean: np.ndarray = field(init=False, repr=False, compare=False)
    _std: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.size, self.crop_size = _size(self.size, "size"), _size(self.crop_size, "crop_size")
        self.image_mean, self.image_std = _floats(self.image_mean, "image_mean"), _floats(self.image_std, "image_std")
        if isinstance(self.resample, str):
            if self.resample not in RESAMPLE:
                raise ValueError(f"resample must be one of {sorted(RESAMPLE)} or 0-5, got {self.resample!r}")
            self.resample = RESAMPLE[self.resample]
        if self.resample not in RESAMPLE.values():
            raise ValueError(f"resample must be one of {sorted(RESAMPLE)} or 0-5, got {self.resample!r}")
        if not isinstance(self.num_channels, int) or isinstance(self.num_channels, bool) or self.num_channels < 1:
            raise ValueError(f"num_channels must be a positive int, got {self.num_channels!r}")
        for key, values in (("image_mean", self.image_mean), ("image_std", self.image_std)):
            if self.do_normalize and len(values) not in (1, self.num_channels):
                raise ValueError(f"{key} must hold 1 or num_channels={self.num_channels} values, got {len(values)}")
        if any(s == 0 for s in self.image_std):
            raise ValueError(f"image_std must not contain 0, got {list(self.image_std)}")
        self._mean = np.asarray(self.image_mean, dtype=np.float32)
        self._std = np.asarray(self.image_std, dtype=np.float32)

    @classmethod
    def plain(cls, size: tuple[int, int] | None, num_channels: int = 3, resample: int | str = "bilinear",
              mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> ImageProcessor:
        """No crop; resize to ``size`` (kept as is when None); scale to [0, 1]; normalise only when ``mean`` and
        ``std`` are given. What models trained on image folders and small data sets use."""
        return cls(do_resize=size is not None, size=size or (224, 224), resample=resample,  # type: ignore[arg-type]
                   do_center_crop=False, do_normalize=mean is not None,
                   image_mean=tuple(mean) if mean is not None else (0.0,),
                   image_std=tuple(std) if std is not None else (1.0,), num_channels=num_channels)

    # --- reading and writing preprocessor_config.json ---------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The settings under Transformers' ``preprocessor_config.json`` keys (plus ``num_channels``)."""
        settings = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        settings["size"] = {"height": self.size[0], "width": self.size[1]}
        settings["crop_size"] = {"height": self.crop_size[0], "width": self.crop_size[1]}
        settings["image_mean"], settings["image_std"] = list(self.image_mean), list(self.image_std)
        settings["image_processor_type"] = "PerceiverImageProcessor"
        return settings

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> ImageProcessor:
        """Settings from ``to_dict`` or a Transformers ``preprocessor_config.json`` (sizes as ints or
        ``{"height", "width"}``); keys other processors add (``do_convert_rgb``, …) are ignored. Missing keys take
        Transformers' PerceiverImageProcessor defaults (the ImageNet recipe)."""
        if not isinstance(settings, Mapping):
            raise ValueError(f"image processor settings must be an object, got {type(settings).__name__}")
        known = {k for k in cls.__dataclass_fields__ if not k.startswith("_")}
        return cls(**{k: v for k, v in settings.items() if k in known and k not in _NAME_KEYS})

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``preprocessor_config.json`` into ``directory``; returns the file."""
        path = Path(directory) / PREPROCESSOR_CONFIG
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str]) -> ImageProcessor:
        """The settings in ``directory``'s ``preprocessor_config.json`` (or that file itself)."""
        path = Path(directory)
        path = path / PREPROCESSOR_CONFIG if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"no {PREPROCESSOR_CONFIG} at {path.parent}")
        try:
            settings = json.loads(path.read_text())
            return cls.from_dict(settings)
        except (json.JSONDecodeError, ValueError, TypeError) as error:
            raise ValueError(f"{path}: {error}") from None

    # --- processing ----------------------------------------------------------------------------------------

    def _crop(self, array: np.ndarray) -> np.ndarray:
        height, width = array.shape[:2]
        short = min(height, width)
        crop_h = int(self.size[0] / self.crop_size[0] * short)
        crop_w = int(self.size[1] / self.crop_size[1] * short)
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        if top >= 0 and left >= 0:
            return array[top:top + crop_h, left:left + crop_w]
        # A crop larger than the image (size > crop_size) is padded with zeros, as Pillow's crop does.
        out = np.zeros((crop_h, crop_w, array.shape[2]), dtype=array.dtype)
        src_t, src_l, dst_t, dst_l = max(top, 0), max(left, 0), max(-top, 0), max(-left, 0)
        h, w = min(height, crop_h), min(width, crop_w)
        out[dst_t:dst_t + h, dst_l:dst_l + w] = array[src_t:src_t + h, src_l:src_l + w]
        return out

    def _resize(self, array: np.ndarray) -> np.ndarray:
        from PIL import Image

        height, width = self.size
        channels = array.shape[2]
        if channels in (1, 3, 4):  # uint8 through Pillow, as Transformers does
            pil = Image.fromarray(array[..., 0] if channels == 1 else array)
            return np.asarray(pil.resize((width, height), resample=self.resample)).reshape(height, width, channels)
        # Other channel counts: each channel as a 32-bit float image, which Pillow resamples without rounding.
        planes = [np.asarray(Image.fromarray(array[..., c].astype(np.float32), mode="F")
                             .resize((width, height), resample=self.resample)) for c in range(channels)]
        return np.stack(planes, axis=-1)

    def preprocess(self, image: ImageInput) -> np.ndarray:
        """One image as ``(num_channels, H, W)`` float32 pixels."""
        array = _pixels(image, self.num_channels)
        if self.do_center_crop:
            array = self._crop(array)
        if self.do_resize:
            array = self._resize(array)
        pixels = array.astype(np.float64) * self.rescale_factor if self.do_rescale else array
        pixels = pixels.astype(np.float32)
        if self.do_normalize:
            pixels = (pixels - self._mean) / self._std
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))

    def __call__(self, images: ImageInput | list[ImageInput] | tuple[ImageInput, ...]) -> dict[str, torch.Tensor]:
        batch = list(images) if isinstance(images, (list, tuple)) else [images]
        if not batch:
            raise ValueError("no images given")
        arrays = [self.preprocess(image) for image in batch]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"images have different sizes after processing {sorted(shapes)}; enable do_resize")
        return {"pixel_values": torch.from_numpy(np.stack(arrays))}
