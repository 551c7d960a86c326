"""Measuring one implementation: time per step, peak memory, FLOPs, the device's matmul peak, and agreement.

Everything here is model-agnostic: a "step" is any zero-argument callable.
"""

from __future__ import annotations

import ctypes
import gc
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

T = TypeVar("T")

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so that wall-clock time covers the work (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing(Generic[T]):
    """Wall-clock seconds of each timed step (and, when asked for, the first step's result)."""

    times_s: list[float]
    first_output: T | None = None

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)


def time_steps(step: Callable[[], T], steps: int, device: torch.device, keep_first: bool = False) -> Timing[T]:
    """Run ``step`` ``steps`` times, timing each call separately (synchronising the device around it).
    With ``keep_first``, the first call's result is kept (e.g. to check a freshly compiled model)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    times: list[float] = []
    first: T | None = None
    for i in range(steps):
        synchronize(device)
        start = time.perf_counter()
        out = step()
        synchronize(device)
        times.append(time.perf_counter() - start)
        if i == 0 and keep_first:
            first = out
        del out  # let the step's output go before the next step allocates its own
    return Timing(times, first)


# --- peak memory ------------------------------------------------------------------------------------------------

def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def resident_bytes() -> int | None:
    """This process's resident memory (VmRSS; psutil where there is no /proc), or None if unknown."""
    kib = _status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.Process().memory_info().rss)


def _reset_high_water_mark() -> bool:
    # Writing "5" to clear_refs resets VmHWM to the current RSS (Linux >= 4.0); some sandboxes forbid it.
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


def release_free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS, so that a CPU baseline taken next is not
    inflated by memory the previous implementation freed but glibc kept (which would hide the next peak)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class PeakMemory:
    """Context manager: peak memory above the baseline at entry, in bytes (``peak_bytes``; None if unknown).

    CUDA: ``torch.cuda.max_memory_allocated`` after a reset, minus what was allocated at entry (exact).
    CPU: peak resident memory minus the resident memory at entry. The peak is the kernel's high-water mark
    (VmHWM, reset at entry) when that can be reset; otherwise a background thread samples VmRSS (or psutil)
    every ``interval_s``, which can miss peaks shorter than the interval.
    """

    def __init__(self, device: torch.device, interval_s: float = 0.002) -> None:
        self.device = device
        self.interval_s = interval_s
        self.peak_bytes: int | None = None
        self.baseline_bytes: int | None = None
        self.method = ""
        self._sampled = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._use_hwm = False

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline_bytes = torch.cuda.memory_allocated(self.device)
            self.method = "cuda max_memory_allocated"
            return self
        release_free_memory()
        self.baseline_bytes = resident_bytes()
        if self.baseline_bytes is None:
            self.method = "unavailable"
            return self
        self._sampled = self.baseline_bytes
        self._use_hwm = _reset_high_water_mark()
        if self._use_hwm:
            self.method = "VmHWM"
        else:
            self.method = f"VmRSS sampled every {self.interval_s * 1000:g} ms"
            self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            now = resident_bytes()
            if now is not None:
                self._sampled = max(self._sampled, now)

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - (self.baseline_bytes or 0)
            return
        if self.baseline_bytes is None:
            return
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        now = resident_bytes() or 0
        peak = max(self._sampled, now)
        if self._use_hwm:
            peak = max(peak, (_status_kib("VmHWM") or 0) * 1024)
        self.peak_bytes = max(0, peak - self.baseline_bytes)


# --- FLOPs ------------------------------------------------------------------------------------------------------

def _attention_flops(query: Tensor, key: Tensor, value: Tensor) -> int:
    batch, heads, queries, qk = query
    return 2 * batch * heads * queries * key[-2] * (qk + value[-1])  # Q·Kᵀ and P·V


def _cpu_flash_forward(query: Any, key: Any, value: Any, *args: Any, out_val: Any = None, **kwargs: Any) -> int:
    return _attention_flops(query, key, value)


def _cpu_flash_backward(grad_out: Any, query: Any, key: Any, value: Any, *args: Any, out_val: Any = None,
                        **kwargs: Any) -> int:
    return 2 * _attention_flops(query, key, value)  # dQ, dK from dS; dP, dV from dO


# PyTorch's counter has formulas for the CUDA attention kernels but not for the CPU flash kernel that
# scaled_dot_product_attention uses on CPU; without these, our CPU attention would count as zero FLOPs.
_EXTRA_FORMULAS = {
    op: formula
    for name, formula in (("_scaled_dot_product_flash_attention_for_cpu", _cpu_flash_forward),
                          ("_scaled_dot_product_flash_attention_for_cpu_backward", _cpu_flash_backward))
    if (op := getattr(torch.ops.aten, name, None)) is not None  # absent from some PyTorch builds
}


class _NoModuleTracking:
    """Stands in for FlopCounterMode's per-module tracker: we only need the total, and the tracker fails on
    modules that return a view of a parameter under no_grad (Transformers' latents: "Expected gradient
    function to be set")."""

    parents = ("Global",)

    def __enter__(self) -> _NoModuleTracking:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def flop_counter() -> FlopCounterMode:
    """A FlopCounterMode that counts matmuls, convolutions and attention (CPU kernels included)."""
    counter = FlopCounterMode(display=False, depth=0, custom_mapping=dict(_EXTRA_FORMULAS))
    if hasattr(counter, "mod_tracker"):
        counter.mod_tracker = _NoModuleTracking()  # type: ignore[assignment]
    return counter


def count_flops(fn: Callable[[], T]) -> tuple[T, int]:
    """Run ``fn`` once under a FLOP counter; returns (its result, FLOPs)."""
    with flop_counter() as counter:
        result = fn()
    return result, int(counter.get_total_flops())


# --- device peak ------------------------------------------------------------------------------------------------

def matmul_peak_tflops(device: torch.device, dtype: torch.dtype, size: int, repeats: int = 5) -> float:
    """Best achieved TFLOP/s of a ``size``×``size`` matmul in ``dtype``: the yardstick for "% of peak"."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=gen).to(device=device, dtype=dtype)
    for _ in range(2):  # warm-up: library initialisation, clocks
        a @ b
    best = min(time_steps(lambda: a @ b, repeats, device).times_s)
    return 2 * size**3 / best / 1e12


# --- agreement --------------------------------------------------------------------------------------------------

Output = torch.Tensor | Mapping[str, torch.Tensor]


def relative_error(ours: Output, reference: Output) -> float:
    """max |ours − reference| / max |reference| (the worst over a dict's entries): scale-free, and not blown up
    by reference values near zero the way an element-wise relative error is."""
    if isinstance(reference, Mapping):
        if not isinstance(ours, Mapping) or sorted(ours) != sorted(reference):
            raise ValueError(f"outputs have different keys: {sorted(ours) if isinstance(ours, Mapping) else ours!r} "
                             f"vs {sorted(reference)}")
        return max(relative_error(ours[k], reference[k]) for k in reference)
    if not isinstance(ours, torch.Tensor) or ours.shape != reference.shape:
        shape = tuple(ours.shape) if isinstance(ours, torch.Tensor) else type(ours).__name__
        raise ValueError(f"output shape {shape} differs from the reference's {tuple(reference.shape)}")
    ref = reference.detach().double().cpu()
    diff = (ours.detach().double().cpu() - ref).abs().max()
    scale = ref.abs().max()
    return float(diff / scale) if float(scale) > 0 else float(diff)
