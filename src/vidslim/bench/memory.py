"""Peak memory of one call, measured in an extra untimed call so that measuring never disturbs a timed sample.

The peak that call reaches above what was in use just before it:
- CUDA: `torch.cuda.max_memory_allocated()` after `reset_peak_memory_stats()`, minus
  `memory_allocated()` before. Exact for tensors; excludes the caching allocator's unused reserve.
- CPU on Linux: free heap memory is first handed back to the system (glibc `malloc_trim`), so that
  memory kept from earlier calls cannot hide the call's own use; then the resident-set high-water mark
  (VmHWM, reset through `/proc/self/clear_refs`) minus VmRSS before the call. It counts pages touched,
  from any allocator, so it is close to, and at most slightly under, the call's real working memory.
  Resetting VmHWM also resets the process's `ru_maxrss`.
- CPU elsewhere: the rise of `resource.getrusage().ru_maxrss`, the process-lifetime peak RSS: 0 when
  the call stayed under an earlier peak, so only a lower bound.
- None when none of these is available or `memory=False`.
`Timing.memory_source` names which one was used.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
from collections.abc import Callable
from typing import Any

import torch


class Probe:
    """Measures the memory one call of `fn` adds at its peak (None: cannot measure here)."""

    source: str | None = None

    def measure(self, fn: Callable[[], Any]) -> int | None:
        fn()
        return None


class _CudaProbe(Probe):
    source = "cuda_max_memory_allocated"

    def measure(self, fn: Callable[[], Any]) -> int | None:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return max(0, torch.cuda.max_memory_allocated() - base)


_STATUS_KB = re.compile(r"^(VmRSS|VmHWM):\s+(\d+)\s+kB", re.MULTILINE)


def _proc_status() -> dict[str, int]:
    with open("/proc/self/status") as f:
        return {k: int(v) * 1024 for k, v in _STATUS_KB.findall(f.read())}


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # Linux: set the peak RSS (VmHWM) to the current RSS


def _malloc_trim() -> Callable[[], Any]:
    """glibc's malloc_trim(0), which returns free heap memory to the system; a no-op elsewhere."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: trim(0)


class _LinuxRssProbe(Probe):
    source = "linux_vmhwm"

    def __init__(self) -> None:
        self._trim = _malloc_trim()

    @staticmethod
    def available() -> bool:
        try:
            _reset_peak_rss()
            return {"VmRSS", "VmHWM"} <= set(_proc_status())
        except OSError:
            return False

    def measure(self, fn: Callable[[], Any]) -> int | None:
        self._trim()
        _reset_peak_rss()
        base = _proc_status()["VmRSS"]
        fn()
        return max(0, _proc_status()["VmHWM"] - base)


class _MaxRssProbe(Probe):
    source = "ru_maxrss_growth"

    def __init__(self) -> None:
        import resource
        import sys

        self._resource = resource
        self._unit = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere

    def measure(self, fn: Callable[[], Any]) -> int | None:
        base = self._resource.getrusage(self._resource.RUSAGE_SELF).ru_maxrss
        fn()
        return (self._resource.getrusage(self._resource.RUSAGE_SELF).ru_maxrss - base) * self._unit


def make_probe(device: str, memory: bool) -> Probe | None:
    if not memory:
        return None
    if device == "cuda":
        return _CudaProbe()
    if device == "cpu":
        if _LinuxRssProbe.available():
            return _LinuxRssProbe()
        try:
            return _MaxRssProbe()
        except ImportError:  # pragma: no cover - Windows
            return Probe()
    return Probe()
