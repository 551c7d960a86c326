"""Where a model runs and in what precision: ``"auto"``/``"cpu"``/``"cuda"``/``"mps"`` and dtype names.

The one place that turns the strings of ``from_pretrained(..., device=, dtype=)``, ``pipeline(...)`` and the
command line's ``--device`` / ``--dtype`` into torch objects. torch is imported inside the functions, so that the
command line can offer the choices below without importing it (``perceiverkit --help`` stays fast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import PerceiverKitError

if TYPE_CHECKING:
    import torch

#: Device names accepted everywhere; ``"auto"`` is CUDA when present, else Apple's MPS when present, else the CPU.
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")

#: Dtype names accepted everywhere (torch's attribute names), full precision first.
DTYPE_CHOICES: tuple[str, ...] = ("float32", "bfloat16", "float16")


class DeviceError(PerceiverKitError, ValueError):
    """A device or dtype that is not one of the choices, or not available on this machine."""


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _available(kind: str) -> bool:
    import torch

    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return _mps_available()
    return True


def auto_device() -> str:
    """The accelerator ``"auto"`` stands for: ``"cuda"``, else ``"mps"``, else ``"cpu"``."""
    return next(kind for kind in ("cuda", "mps", "cpu") if _available(kind))


def resolve_device(device: str | torch.device | None) -> torch.device | None:
    """``device`` as a :class:`torch.device` (``None`` stays ``None``: leave the model where it is).

    Accepts a :class:`torch.device`, one of :data:`DEVICE_CHOICES`, or an indexed name such as ``"cuda:1"``.
    A name outside the choices, or an accelerator this machine lacks, raises :class:`DeviceError` in one line.
    """
    import torch

    if device is None or isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise DeviceError(f"device must be one of {list(DEVICE_CHOICES)} or a torch.device, got {device!r}")
    kind, _, index = device.partition(":")
    if kind not in DEVICE_CHOICES or (index and (kind == "auto" or not index.isdigit())):
        raise DeviceError(f"unknown device {device!r}; expected one of {list(DEVICE_CHOICES)}")
    if kind == "auto":
        return torch.device(auto_device())
    if not _available(kind):
        backend = "CUDA" if kind == "cuda" else "MPS"
        raise DeviceError(f"device {device!r} is not available: this machine has no {backend}; choose cpu, "
                          "or auto (which picks an accelerator when one is present)")
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        raise DeviceError(f"device {device!r} does not exist; this machine has {torch.cuda.device_count()} CUDA "
                          "device(s)")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """``dtype`` as a :class:`torch.dtype`: a torch dtype, one of :data:`DTYPE_CHOICES` (also ``"torch.bfloat16"``),
    or ``None`` (keep the model's). Anything else raises :class:`DeviceError` naming the choices."""
    import torch

    if dtype is None:
        return None
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise DeviceError(f"dtype must be a floating-point type, one of {list(DTYPE_CHOICES)}; got {dtype}")
        return dtype
    name = dtype.removeprefix("torch.") if isinstance(dtype, str) else None
    if name not in DTYPE_CHOICES:
        raise DeviceError(f"unknown dtype {dtype!r}; expected one of {list(DTYPE_CHOICES)}")
    resolved: torch.dtype = getattr(torch, name)
    return resolved


__all__ = ["DEVICE_CHOICES", "DTYPE_CHOICES", "DeviceError", "auto_device", "resolve_device", "resolve_dtype"]
