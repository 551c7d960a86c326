"""Turning images (PIL, numpy arrays or files) into the ImageNet models' ``pixel_values``.

The published recipe: centre-crop a square of 224/256 of the shorter side, bicubic-resize to 224×224, scale to
[0, 1] and normalise with the ImageNet mean and standard deviation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
import torch

if TYPE_CHECKING:
    import PIL.Image

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: One image: a PIL image, an array or tensor of pixels, or a file path. PIL's class is named in a string
#: because PIL is only imported when an image is loaded.
ImageInput = Union["PIL.Image.Image", np.ndarray, torch.Tensor, str, "os.PathLike[str]"]


def load_image(image: ImageInput) -> PIL.Image.Image:
    """An RGB PIL image from a PIL image, a file path, an ``(H, W[, C])`` uint8 array or a ``(C, H, W)`` uint8
    tensor."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"no image file at {path}")
        try:
            with Image.open(path) as opened:
                return opened.convert("RGB")
        except UnidentifiedImageError:
            raise ValueError(f"{path} is not an image file Pillow can read") from None
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] not in (1, 3):
            raise ValueError(f"image tensors must have shape (channels, height, width), got {tuple(image.shape)}")
        image = image.permute(1, 2, 0).cpu().numpy()
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (3, 4)):
            raise ValueError(f"image arrays must have shape (height, width) or (height, width, 3|4), got {image.shape}")
        if image.dtype != np.uint8:
            raise TypeError(f"image arrays must be uint8 (0-255), got dtype {image.dtype}; convert or pass a PIL image")
        if image.size == 0:
            raise ValueError(f"image must not be empty, got shape {image.shape}")
        return Image.fromarray(image).convert("RGB")
    raise TypeError(f"expected a PIL image, numpy array, torch tensor or file path, got {type(image).__name__}")


class ImageProcessor:
    """Preprocesses images for the ImageNet classifiers; returns ``{"pixel_values": (B, 3, H, W) tensor}``.

    Args:
        size: output (height, width).
        crop_size: the centre crop keeps ``size / crop_size`` of the shorter side (224/256 by default).
        do_center_crop, do_resize, do_normalize: switch the steps off.
        mean, std: per-channel normalisation.
    """

    def __init__(
        self,
        size: tuple[int, int] = (224, 224),
        crop_size: tuple[int, int] = (256, 256),
        do_center_crop: bool = True,
        do_resize: bool = True,
        do_normalize: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.size = tuple(size)
        self.crop_size = tuple(crop_size)
        self.do_center_crop = do_center_crop
        self.do_resize = do_resize
        self.do_normalize = do_normalize
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    def _one(self, image: ImageInput) -> np.ndarray:
        from PIL import Image

        pil = load_image(image)
        if self.do_center_crop:
            width, height = pil.size
            short = min(height, width)
            crop_h = int(self.size[0] / self.crop_size[0] * short)
            crop_w = int(self.size[1] / self.crop_size[1] * short)
            top, left = (height - crop_h) // 2, (width - crop_w) // 2
            pil = pil.crop((left, top, left + crop_w, top + crop_h))
        if self.do_resize:
            pil = pil.resize((self.size[1], self.size[0]), resample=Image.Resampling.BICUBIC)
        pixels = np.asarray(pil, dtype=np.float32) / 255.0
        if self.do_normalize:
            pixels = (pixels - self.mean) / self.std
        return pixels.transpose(2, 0, 1)

    def __call__(self, images: ImageInput | list[ImageInput] | tuple[ImageInput, ...]) -> dict[str, torch.Tensor]:
        batch = list(images) if isinstance(images, (list, tuple)) else [images]
        if not batch:
            raise ValueError("no images given")
        arrays = [self._one(image) for image in batch]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"images have different sizes after processing {sorted(shapes)}; enable do_resize")
        return {"pixel_values": torch.from_numpy(np.stack(arrays))}
