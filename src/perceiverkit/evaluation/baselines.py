"""Classical optical-flow baselines to compare learned models against: OpenCV's Farnebäck and DIS methods.

Each method's parameters are a frozen dataclass (:class:`FarnebackSetting`, :class:`DISSetting`) that computes
flow and says what it is; :data:`TUNED_SETTINGS` holds the settings chosen for each resolution of the Middlebury
evaluation pair by a grid search on synthetic validation pairs (:mod:`perceiverkit.evaluation.flow_tuning`,
``python benchmarks/flow_baselines.py``), never on the Middlebury pair itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Literal, Protocol

import numpy as np

from ..errors import PerceiverKitError

__all__ = ["DEFAULT_DIS", "DEFAULT_FARNEBACK", "TUNED_SETTINGS", "DISSetting", "FarnebackSetting", "FlowBaseline",
           "UntunedResolutionError", "dis_flow", "farneback_flow", "tuned_setting"]

DISPreset = Literal["ultrafast", "fast", "medium"]
BaselineName = Literal["farneback", "dis"]


class UntunedResolutionError(PerceiverKitError, KeyError):
    """No tuned baseline setting exists for the requested resolution."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def _opencv() -> ModuleType:
    """OpenCV, or an ImportError that names the extra installing it."""
    try:
        import cv2
    except ImportError:
        raise ImportError("the flow baselines need OpenCV: pip install 'perceiverkit[baselines]'") from None
    return cv2


def _to_gray_uint8(frame: np.ndarray, name: str) -> np.ndarray:
    """(H, W), (H, W, 1) or RGB (H, W, 3) → (H, W) uint8; float frames are taken to be in [0, 255]."""
    cv2 = _opencv()
    array = np.asarray(frame)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"{name} must be grayscale (H, W) or RGB (H, W, 3), got shape {array.shape}")
    if array.dtype != np.uint8:
        if not (np.issubdtype(array.dtype, np.number) and not np.iscomplexobj(array)):
            raise ValueError(f"{name} must hold real numbers (uint8 preferred), got dtype {array.dtype}")
        array = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    if array.ndim == 3:
        array = cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(array)


def _gray_pair(frame1: np.ndarray, frame2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    prev, nxt = _to_gray_uint8(frame1, "frame1"), _to_gray_uint8(frame2, "frame2")
    if prev.shape != nxt.shape:
        raise ValueError(f"frames must have the same size, got {prev.shape} and {nxt.shape}")
    return prev, nxt


class FlowBaseline(Protocol):
    """A classical method with fixed parameters: frames in, (H, W, 2) flow in pixels out."""

    def flow(self, frame1: np.ndarray, frame2: np.ndarray) -> np.ndarray: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class FarnebackSetting:
    """The parameters of OpenCV's ``calcOpticalFlowFarneback`` (Farnebäck 2003, polynomial expansion).

    ``pyr_scale`` is the image scale between pyramid levels, ``levels`` the number of levels (OpenCV stops
    earlier when a level gets too small), ``winsize`` the averaging window, ``iterations`` the iterations per
    level, ``poly_n``/``poly_sigma`` the neighbourhood and Gaussian width of the polynomial fit, ``gaussian``
    a Gaussian instead of a box averaging window. The defaults are the one setting this project used before
    tuning (a 5-level pyramid, poly_n 7 with sigma 1.5).
    """

    pyr_scale: float = 0.5
    levels: int = 5
    winsize: int = 17
    iterations: int = 5
    poly_n: int = 7
    poly_sigma: float = 1.5
    gaussian: bool = False

    def flow(self, frame1: np.ndarray, frame2: np.ndarray) -> np.ndarray:
        return farneback_flow(frame1, frame2, pyr_scale=self.pyr_scale, levels=self.levels, winsize=self.winsize,
                              iterations=self.iterations, poly_n=self.poly_n, poly_sigma=self.poly_sigma,
                              flags=_GAUSSIAN_FLAG if self.gaussian else 0)

    def describe(self) -> str:
        window = "Gaussian " if self.gaussian else ""
        return (f"pyr_scale {self.pyr_scale}, levels {self.levels}, {window}winsize {self.winsize}, "
                f"iterations {self.iterations}, poly_n {self.poly_n}, poly_sigma {self.poly_sigma}")


_GAUSSIAN_FLAG = 256  # cv2.OPTFLOW_FARNEBACK_GAUSSIAN, kept here so that describing a setting needs no OpenCV


@dataclass(frozen=True)
class DISSetting:
    """OpenCV's Dense Inverse Search (Kroeger et al. 2016): a preset, optionally with some parameters replaced.

    ``finest_scale`` is the pyramid level the flow is computed at (0 = full resolution, 2 = a quarter),
    ``patch_size``/``patch_stride`` the patches matched, ``gradient_descent_iterations`` the inverse-search
    iterations per patch, ``variational_refinement_iterations`` the smoothing refinement (0 = none). ``None``
    keeps the preset's value (ultrafast: finest scale 2, patches 8/4, 12 iterations, no refinement; fast:
    2, 8/4, 16, 5; medium: 1, 8/3, 25, 5).
    """

    preset: DISPreset = "medium"
    finest_scale: int | None = None
    patch_size: int | None = None
    patch_stride: int | None = None
    gradient_descent_iterations: int | None = None
    variational_refinement_iterations: int | None = None

    def flow(self, frame1: np.ndarray, frame2: np.ndarray) -> np.ndarray:
        return dis_flow(frame1, frame2, preset=self.preset, finest_scale=self.finest_scale,
                        patch_size=self.patch_size, patch_stride=self.patch_stride,
                        gradient_descent_iterations=self.gradient_descent_iterations,
                        variational_refinement_iterations=self.variational_refinement_iterations)

    def describe(self) -> str:
        parts = [f"preset {self.preset}"]
        for name in ("finest_scale", "patch_size", "patch_stride", "gradient_descent_iterations",
                     "variational_refinement_iterations"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name} {value}")
        return ", ".join(parts)


def farneback_flow(
    frame1: np.ndarray,
    frame2: np.ndarray,
    *,
    pyr_scale: float = 0.5,
    levels: int = 5,
    winsize: int = 17,
    iterations: int = 5,
    poly_n: int = 7,
    poly_sigma: float = 1.5,
    flags: int = 0,
) -> np.ndarray:
    """Dense Farnebäck flow from ``frame1`` to ``frame2`` with OpenCV: (H, W, 2) float32, (dx, dy) pixels.

    The pixel at (x, y) in ``frame1`` is estimated to appear at (x + dx, y + dy) in ``frame2``. Frames are
    uint8 RGB (H, W, 3) or grayscale (H, W) arrays of equal size (float arrays are rounded and clipped to
    [0, 255]); colour frames are converted to grayscale. Keyword arguments are OpenCV's
    ``calcOpticalFlowFarneback`` parameters (see :class:`FarnebackSetting`); the defaults are not tuned for
    any resolution: :func:`tuned_setting` gives the ones chosen on validation pairs.
    """
    cv2 = _opencv()
    prev, nxt = _gray_pair(frame1, frame2)
    # OpenCV writes the flow into this buffer (it would also allocate one for None, which its stubs do not allow).
    out = np.zeros((*prev.shape, 2), np.float32)  # (H, W, 2)
    flow = cv2.calcOpticalFlowFarneback(
        prev, nxt, out, pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags
    )
    return np.asarray(flow, dtype=np.float32)


_DIS_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}  # cv2.DISOPTICAL_FLOW_PRESET_*


def dis_flow(
    frame1: np.ndarray,
    frame2: np.ndarray,
    *,
    preset: DISPreset = "medium",
    finest_scale: int | None = None,
    patch_size: int | None = None,
    patch_stride: int | None = None,
    gradient_descent_iterations: int | None = None,
    variational_refinement_iterations: int | None = None,
) -> np.ndarray:
    """Dense flow from ``frame1`` to ``frame2`` with OpenCV's DIS method: (H, W, 2) float32, (dx, dy) pixels.

    Frames as for :func:`farneback_flow`. ``preset`` is one of OpenCV's presets; each other argument, when
    given, replaces that preset's value (see :class:`DISSetting`).
    """
    cv2 = _opencv()
    if preset not in _DIS_PRESETS:
        raise ValueError(f"preset must be one of {sorted(_DIS_PRESETS)}, got {preset!r}")
    if patch_size is not None and patch_stride is not None and not 0 < patch_stride <= patch_size:
        raise ValueError(f"patch_stride must lie in [1, patch_size={patch_size}], got {patch_stride}")
    prev, nxt = _gray_pair(frame1, frame2)
    dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])
    if finest_scale is not None:
        dis.setFinestScale(finest_scale)
    if patch_size is not None:
        dis.setPatchSize(patch_size)
    if patch_stride is not None:
        dis.setPatchStride(patch_stride)
    if gradient_descent_iterations is not None:
        dis.setGradientDescentIterations(gradient_descent_iterations)
    if variational_refinement_iterations is not None:
        dis.setVariationalRefinementIterations(variational_refinement_iterations)
    out = np.zeros((*prev.shape, 2), np.float32)  # (H, W, 2), written by OpenCV
    return np.asarray(dis.calc(prev, nxt, out), dtype=np.float32)


#: Farnebäck as used before tuning (the dataclass defaults) and DIS's ``medium`` preset as shipped.
DEFAULT_FARNEBACK = FarnebackSetting()
DEFAULT_DIS = DISSetting()

#: The settings chosen by ``python benchmarks/flow_baselines.py`` for each (height, width) of the Middlebury
#: motorcycle pair: the lowest mean EPE on 64 synthetic validation pairs of that size (never the Middlebury pair)
#: over :func:`~perceiverkit.evaluation.flow_tuning.farneback_grid` and ``dis_grid``. docs/benchmarks.md records
#: the run that chose them; the script says whether a new run still agrees with this table.
TUNED_SETTINGS: dict[tuple[int, int], dict[BaselineName, FlowBaseline]] = {
    (62, 93): {
        "farneback": FarnebackSetting(pyr_scale=0.8, levels=2, winsize=41, iterations=3, poly_n=5, poly_sigma=1.1,
                                      gaussian=True),
        "dis": DISSetting("medium", finest_scale=0, patch_size=6, patch_stride=2, gradient_descent_iterations=25,
                          variational_refinement_iterations=5),
    },
    (125, 185): {
        "farneback": FarnebackSetting(pyr_scale=0.8, levels=7, winsize=41, iterations=3, poly_n=5, poly_sigma=1.1),
        "dis": DISSetting("medium", finest_scale=0, patch_size=6, patch_stride=2, gradient_descent_iterations=25,
                          variational_refinement_iterations=20),
    },
}


def tuned_setting(method: BaselineName, height: int, width: int) -> FlowBaseline:
    """The setting of ``method`` chosen on validation pairs of ``height`` × ``width`` pixels."""
    if (height, width) not in TUNED_SETTINGS:
        sizes = ", ".join(f"{w}×{h}" for h, w in TUNED_SETTINGS)
        raise UntunedResolutionError(f"no tuned {method} setting for {width}×{height}; tuned sizes: {sizes} "
                                     "(run benchmarks/flow_baselines.py for another)")
    return TUNED_SETTINGS[(height, width)][method]
