"""Optical-flow training pairs made from real photographs and a known, smooth synthetic flow.

Convention used throughout: a flow ``F`` maps frame 1 to frame 2, i.e. the scene point at pixel ``x`` of frame 1
appears at ``x + F(x)`` in frame 2. Pairs are built "frame 2 first": frame 2 is a crop of a real photo and
frame 1 is defined as ``frame1(x) = frame2(x + F(x))`` (bilinear sampling), which makes ``F`` the *exact*
frame 1 → frame 2 flow rather than an approximate inverse of a warp.
Pixel ``x`` is ``(column, row)``; flows store ``(dx, dy)`` in pixels.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

__all__ = ["EVALUATION_IMAGES", "TRAINING_IMAGES", "SyntheticFlowPairs", "real_images", "smooth_flow", "warp"]

#: Names of the bundled photos used for training, in the order :func:`real_images` returns them.
TRAINING_IMAGES: tuple[str, ...] = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "china", "flower",
)
#: The Middlebury motorcycle stereo pair (left, right): kept out of training because it is the evaluation pair.
EVALUATION_IMAGES: tuple[str, ...] = ("motorcycle_left", "motorcycle_right")


def _check_size(height: int, width: int) -> None:
    if not (isinstance(height, int) and isinstance(width, int) and height >= 1 and width >= 1):
        raise ValueError(f"expected positive integer height and width, got ({height!r}, {width!r})")


def smooth_flow(
    height: int,
    width: int,
    max_displacement: float,
    generator: torch.Generator | None = None,
    num_modes: int = 4,
    max_frequency: float = 1.5,
) -> torch.Tensor:
    """A random smooth flow field of shape (2, height, width), float32, channels (dx, dy) in pixels.

    The field is a random affine motion (translation, rotation, zoom, shear about the image centre) plus
    ``num_modes`` random plane-wave sinusoids with at most ``max_frequency`` cycles per longest image side, then
    rescaled so that max |flow| equals ``max_displacement`` exactly. Spatial derivatives are therefore
    O(max_displacement / max(height, width)) (in practice below ~6× that): the flow is locally near-rigid.
    """
    _check_size(height, width)
    if not (math.isfinite(max_displacement) and max_displacement >= 0):
        raise ValueError(f"max_displacement must be a finite number >= 0, got {max_displacement!r}")
    if not (isinstance(num_modes, int) and num_modes >= 0):
        raise ValueError(f"num_modes must be an integer >= 0, got {num_modes!r}")
    if not (math.isfinite(max_frequency) and max_frequency > 0):
        raise ValueError(f"max_frequency must be a finite number > 0, got {max_frequency!r}")

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator, dtype=torch.float64)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=generator, dtype=torch.float64)

    # Coordinates normalised by half the longest side, so the motion statistics do not depend on resolution.
    half = max(height, width) / 2
    v = (torch.arange(height, dtype=torch.float64) - (height - 1) / 2) / half
    u = (torch.arange(width, dtype=torch.float64) - (width - 1) / 2) / half
    vv, uu = torch.meshgrid(v, u, indexing="ij")

    translation = randn(2)
    zoom, rotation, shear_a, shear_b = (randn(4) * torch.tensor([0.3, 0.3, 0.15, 0.15], dtype=torch.float64))
    a = torch.stack([zoom + shear_a, shear_b - rotation, shear_b + rotation, zoom - shear_a]).reshape(2, 2)
    fx = translation[0] + a[0, 0] * uu + a[0, 1] * vv
    fy = translation[1] + a[1, 0] * uu + a[1, 1] * vv

    if num_modes:
        angles = rand(num_modes) * (2 * math.pi)
        # u spans 2 units over the longest side, so f cycles per side is an angular frequency of pi * f per unit.
        freqs = (0.25 + rand(num_modes) * max(max_frequency - 0.25, 0.0)) * math.pi
        phases = rand(num_modes) * (2 * math.pi)
        amplitudes = randn(num_modes, 2) * (0.5 / math.sqrt(num_modes))  # total noise power independent of count
        for k in range(num_modes):
            wave = torch.sin(freqs[k] * (torch.cos(angles[k]) * uu + torch.sin(angles[k]) * vv) + phases[k])
            fx = fx + amplitudes[k, 0] * wave
            fy = fy + amplitudes[k, 1] * wave

    flow = torch.stack([fx, fy])
    peak = float(torch.linalg.vector_norm(flow, dim=0).max())
    if max_displacement == 0 or peak == 0:
        return torch.zeros(2, height, width, dtype=torch.float32)
    return (flow * (max_displacement / peak)).to(torch.float32)


def _sample(image: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinearly sample ``image`` (N, C, H, W) at absolute pixel coordinates ``x``, ``y`` (N, H', W').

    Returns float64 samples (N, C, H', W') and a mask of coordinates inside [0, W-1] × [0, H-1]; outside it,
    border padding repeats the edge pixels.
    """
    height, width = image.shape[-2:]
    # align_corners=True puts pixel centres at -1 and +1, so pixel index p maps to 2p/(size-1) - 1.
    gx = 2 * x / (width - 1) - 1 if width > 1 else torch.zeros_like(x)
    gy = 2 * y / (height - 1) - 1 if height > 1 else torch.zeros_like(y)
    # float64 keeps the normalise/unnormalise round trip exact enough that integer shifts reproduce pixels.
    grid = torch.stack([gx, gy], dim=-1).to(torch.float64)
    out = F.grid_sample(image.to(torch.float64), grid, mode="bilinear", padding_mode="border", align_corners=True)
    valid = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
    return out, valid


def warp(image: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward-warp ``image`` by ``flow``: ``out(x) = image(x + flow(x))`` with bilinear sampling.

    With ``image`` = frame 2 and ``flow`` = the frame 1 → frame 2 flow, ``out`` is frame 1 (exactly, for the
    frame 1 this module synthesises). ``image`` is (C, H, W) or (N, C, H, W); ``flow`` is (2, H, W) or
    (N, 2, H, W) with channels (dx, dy) in pixels. Returns ``(out, valid)``: ``out`` has the image's shape and
    dtype (float32 for integer images), ``valid`` (H, W) or (N, H, W) bool marks pixels whose ``x + flow(x)``
    lands inside the image; elsewhere ``out`` repeats the border pixels.
    """
    if not isinstance(image, torch.Tensor) or not isinstance(flow, torch.Tensor):
        raise TypeError(f"expected torch tensors, got image {type(image).__name__}, flow {type(flow).__name__}")
    if image.ndim not in (3, 4) or flow.ndim != image.ndim:
        raise ValueError(
            f"expected image (C, H, W) with flow (2, H, W), or image (N, C, H, W) with flow (N, 2, H, W); got "
            f"image {tuple(image.shape)} and flow {tuple(flow.shape)}"
        )
    batched = image.ndim == 4
    images, flows = (image, flow) if batched else (image[None], flow[None])
    n, _, height, width = images.shape
    if flows.shape != (n, 2, height, width):
        raise ValueError(
            f"flow must have shape {(n, 2, height, width)[0 if batched else 1:]} to match the image "
            f"{tuple(image.shape)}, got {tuple(flow.shape)}"
        )
    if not flows.is_floating_point() or not bool(torch.isfinite(flows).all()):
        raise ValueError("flow must be a floating-point tensor of finite values")
    xs = torch.arange(width, dtype=torch.float64, device=flows.device)
    ys = torch.arange(height, dtype=torch.float64, device=flows.device)
    out, valid = _sample(images, xs + flows[:, 0].double(), ys[:, None] + flows[:, 1].double())
    out = out.to(image.dtype if image.is_floating_point() else torch.float32)
    return (out, valid) if batched else (out[0], valid[0])


def _skimage_loader(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        if name.startswith("motorcycle_"):
            left, right, _ = data.stereo_motorcycle()
            return left if name == "motorcycle_left" else right
        return getattr(data, name)()

    return load


def _sklearn_loader(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")

    return load


_LOADERS: dict[str, Callable[[], np.ndarray]] = {
    **{name: _skimage_loader(name) for name in TRAINING_IMAGES[:6] + EVALUATION_IMAGES},
    **{name: _sklearn_loader(name) for name in ("china", "flower")},
}


@functools.cache
def _load(name: str) -> np.ndarray | None:
    """One bundled photo as a read-only uint8 (H, W, 3) array, or None if its package is not installed."""
    try:
        image = np.asarray(_LOADERS[name]())
    except (ImportError, OSError):  # optional package missing, or a file absent from a trimmed install
        return None
    image = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    image.setflags(write=False)  # cached and shared between callers
    return image


def real_images(exclude_evaluation: bool = True) -> list[np.ndarray]:
    """The real colour photos available offline, as read-only uint8 (H, W, 3) arrays.

    scikit-image's bundled photos and scikit-learn's sample images, in :data:`TRAINING_IMAGES` order, followed by
    the motorcycle stereo pair (:data:`EVALUATION_IMAGES`) unless ``exclude_evaluation``. Photos whose package
    is missing are skipped; raises ImportError if none can be loaded.
    """
    names = TRAINING_IMAGES + (() if exclude_evaluation else EVALUATION_IMAGES)
    images = [image for image in map(_load, names) if image is not None]
    if not images:
        raise ImportError("no bundled photos found: pip install 'perceiverkit[baselines]' (scikit-image, scikit-learn)")
    return images


def _item_generator(*key: int) -> torch.Generator:
    """A generator seeded from a hash of ``key`` so that nearby (seed, index) pairs give unrelated streams."""
    state = np.random.SeedSequence([int(k) for k in key]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)


class SyntheticFlowPairs(Dataset[dict[str, torch.Tensor]]):
    """Image pairs with exact ground-truth flow: a real photo crop (frame 2) and its warp by a smooth flow (frame 1).

    Item ``i`` depends only on ``(seed, i)``: a random photo, a random crop at a random (log-uniform) scale in
    ``scale_range``, a :func:`smooth_flow` whose peak displacement is uniform in [0.1, 1] × ``max_displacement``,
    and ``frame1(x) = frame2(x + flow(x))``. Frame 1 is sampled from a crop larger than frame 2 by a margin
    exceeding the displacement, so it shows real image content everywhere (no border smearing); ``valid`` marks
    pixels whose match ``x + flow(x)`` lies inside frame 2. With ``brightness`` > 0 each frame is scaled by an
    independent gain in [1 - brightness, 1 + brightness] (then clipped), to discourage reliance on exact
    brightness constancy.

    Items are dicts: ``frames`` (2, 3, H, W) float32 in [0, 255] (frame 1, frame 2), ``flow`` (H, W, 2) float32
    (dx, dy) pixels from frame 1 to frame 2, ``valid`` (H, W) bool.
    """

    def __init__(
        self,
        size: tuple[int, int] = (368, 496),
        length: int = 10_000,
        max_displacement: float = 16.0,
        seed: int = 0,
        images: Sequence[np.ndarray] | None = None,
        scale_range: tuple[float, float] = (0.5, 1.5),
        brightness: float = 0.0,
        num_modes: int = 4,
    ) -> None:
        if len(size) != 2:
            raise ValueError(f"size must be (height, width), got {size!r}")
        _check_size(*size)
        if not (isinstance(length, int) and length >= 0):
            raise ValueError(f"length must be an integer >= 0, got {length!r}")
        if not (math.isfinite(max_displacement) and max_displacement >= 0):
            raise ValueError(f"max_displacement must be a finite number >= 0, got {max_displacement!r}")
        if not (len(scale_range) == 2 and 0 < scale_range[0] <= scale_range[1] < math.inf):
            raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, got {scale_range!r}")
        if not 0 <= brightness < 1:
            raise ValueError(f"brightness must lie in [0, 1), got {brightness!r}")
        images = real_images(exclude_evaluation=True) if images is None else list(images)
        if not images:
            raise ValueError("images must contain at least one photo")
        for k, image in enumerate(images):
            if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
                    and image.shape[2] == 3):
                desc = f"{type(image).__name__} {getattr(image, 'dtype', '')} {getattr(image, 'shape', '')}"
                raise ValueError(f"images[{k}] must be a uint8 (H, W, 3) numpy array, got {desc}")
        self.size = (int(size[0]), int(size[1]))
        self.length = length
        self.max_displacement = float(max_displacement)
        self.seed = int(seed)
        self.images = images
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.brightness = float(brightness)
        self.num_modes = num_modes
        # +2: bilinear sampling at up to max_displacement from frame 2's edge reads one pixel further, plus slack.
        self.margin = math.ceil(self.max_displacement) + 2

    def __len__(self) -> int:
        return self.length

    def _crop(self, image: np.ndarray, gen: torch.Generator) -> torch.Tensor:
        """A random crop of (H + 2 margin, W + 2 margin) pixels at a random scale, as float64 (1, 3, h, w)."""
        from PIL import Image

        out_h, out_w = self.size[0] + 2 * self.margin, self.size[1] + 2 * self.margin
        img_h, img_w = image.shape[:2]
        low, high = self.scale_range
        scale = math.exp(math.log(low) + float(torch.rand((), generator=gen)) * (math.log(high) - math.log(low)))
        scale = max(scale, out_h / img_h, out_w / img_w)  # upscale small photos rather than fail
        src_h, src_w = min(img_h, math.ceil(out_h / scale)), min(img_w, math.ceil(out_w / scale))
        top = int(torch.randint(img_h - src_h + 1, (), generator=gen))
        left = int(torch.randint(img_w - src_w + 1, (), generator=gen))
        crop = image[top : top + src_h, left : left + src_w]
        if crop.shape[:2] != (out_h, out_w):  # PIL resizing is antialiased, so downscaling does not alias
            crop = np.asarray(Image.fromarray(crop).resize((out_w, out_h), Image.Resampling.BICUBIC))
        return torch.from_numpy(np.array(crop)).permute(2, 0, 1)[None].to(torch.float64)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        gen = _item_generator(self.seed, index)
        image = self.images[int(torch.randint(len(self.images), (), generator=gen))]
        big = self._crop(image, gen)
        height, width = self.size
        peak = self.max_displacement * (0.1 + 0.9 * float(torch.rand((), generator=gen)))
        flow = smooth_flow(height, width, peak, gen, num_modes=self.num_modes)

        m = self.margin
        frame2 = big[0, :, m : m + height, m : m + width]
        xs = torch.arange(width, dtype=torch.float64)
        ys = torch.arange(height, dtype=torch.float64)[:, None]
        x2, y2 = xs + flow[0].double(), ys + flow[1].double()  # where frame-1 pixels land in frame 2
        frame1 = _sample(big, (x2 + m)[None], (y2 + m)[None])[0][0]
        valid = (x2 >= 0) & (x2 <= width - 1) & (y2 >= 0) & (y2 <= height - 1)

        frames = torch.stack([frame1, frame2])
        if self.brightness:
            gains = 1 + self.brightness * (2 * torch.rand(2, generator=gen, dtype=torch.float64) - 1)
            frames = frames * gains[:, None, None, None]
        return {
            "frames": frames.clamp(0, 255).to(torch.float32),
            "flow": flow.permute(1, 2, 0).contiguous(),
            "valid": valid,
        }
