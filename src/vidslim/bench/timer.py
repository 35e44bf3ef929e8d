"""Latency and throughput timing with warm-up, median and spread, and interleaved side-by-side comparison.

A single mean hides the noise of a shared machine, so every sample is kept and the median and
percentiles are reported. `compare` times several contenders round-robin, rotating who goes first, so
a noisy stretch of the machine hits all of them alike, and gives each one's ratio to a baseline both
as a ratio of medians and as the median of per-round ratios (paired, hence more robust to drift).

CUDA work is asynchronous: with `sync=None` (auto) the timer calls `torch.cuda.synchronize()` before
starting and before stopping the clock whenever CUDA is initialised, so a sample covers the kernels,
not just their launch.

Peak memory (`Timing.peak_memory_bytes`) comes from one extra, untimed call after the timed ones, so
measuring never disturbs a sample: the peak that call reaches above what was in use just before it.
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
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

Clock = Callable[[], float]
Sync = Callable[[], None]


# --------------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one function: every sample, and the statistics a report needs."""

    samples: tuple[float, ...]
    warmup: int = 0
    peak_memory_bytes: int | None = None
    memory_source: str | None = None
    items_per_call: float | None = None

    def _q(self, q: float) -> float:
        return float(np.percentile(self.samples, q)) if self.samples else math.nan

    @property
    def n(self) -> int:
        """Number of timed calls."""
        return len(self.samples)

    @property
    def median(self) -> float:
        return self._q(50)

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples)) if self.samples else math.nan

    @property
    def std(self) -> float:
        return float(np.std(self.samples)) if self.samples else math.nan

    @property
    def min(self) -> float:
        return min(self.samples, default=math.nan)

    @property
    def max(self) -> float:
        return max(self.samples, default=math.nan)

    @property
    def p10(self) -> float:
        return self._q(10)

    @property
    def p90(self) -> float:
        return self._q(90)

    @property
    def iqr(self) -> float:
        """Interquartile range (p75 - p25) in seconds."""
        return self._q(75) - self._q(25)

    def throughput(self, items_per_call: float | None = None) -> float:
        """Items per second at the median latency (items: videos, frames, tokens ... per call)."""
        items = self.items_per_call if items_per_call is None else items_per_call
        if items is None:
            raise ValueError("throughput needs items_per_call (pass it here or to time_fn/compare)")
        return items / self.median

    def summary(self) -> str:
        """One line: median [p10, p90] in ms, n, throughput and memory when known."""
        text = f"{self.median * 1e3:.3f} ms [p10 {self.p10 * 1e3:.3f}, p90 {self.p90 * 1e3:.3f}] n={self.n}"
        if self.items_per_call is not None:
            text += f", {self.throughput():.1f} items/s"
        if self.peak_memory_bytes is not None:
            text += f", peak +{self.peak_memory_bytes / 2**20:.1f} MiB ({self.memory_source})"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready statistics (seconds) and all samples."""
        out: dict[str, Any] = {
            "median_s": self.median, "mean_s": self.mean, "std_s": self.std, "min_s": self.min,
            "max_s": self.max, "p10_s": self.p10, "p90_s": self.p90, "iqr_s": self.iqr, "n": self.n,
            "warmup": self.warmup, "peak_memory_bytes": self.peak_memory_bytes,
            "memory_source": self.memory_source, "samples_s": list(self.samples),
        }
        if self.items_per_call is not None:
            out["items_per_call"] = self.items_per_call
            out["items_per_s"] = self.throughput()
        return out


@dataclass(frozen=True)
class Comparison:
    """Interleaved timings of several contenders and their ratios to `baseline` (time / baseline time)."""

    timings: dict[str, Timing]
    baseline: str

    def ratio(self, name: str) -> float:
        """Median time of `name` over median time of the baseline (< 1: faster than the baseline)."""
        return self.timings[name].median / self.timings[self.baseline].median

    def paired_ratio(self, name: str) -> float:
        """Median over rounds of (time of `name` / time of the baseline in the same round)."""
        a, b = self.timings[name].samples, self.timings[self.baseline].samples
        return float(np.median(np.asarray(a) / np.asarray(b)))

    def speedup(self, name: str) -> float:
        """Baseline median over `name`'s median (> 1: faster than the baseline)."""
        return 1.0 / self.ratio(name)

    @property
    def ratios(self) -> dict[str, float]:
        return {name: self.ratio(name) for name in self.timings}

    def table(self) -> str:
        """One line per contender: its summary and its ratio to the baseline."""
        width = max(len(n) for n in self.timings)
        return "\n".join(
            f"{name:<{width}}  {t.summary()}  x{self.ratio(name):.3f} (paired x{self.paired_ratio(name):.3f})"
            for name, t in self.timings.items()
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "contenders": {
                name: {**t.to_dict(), "ratio": self.ratio(name), "paired_ratio": self.paired_ratio(name)}
                for name, t in self.timings.items()
            },
        }


# --------------------------------------------------------------------------------------------------
# synchronisation and memory probes
# --------------------------------------------------------------------------------------------------


def _cuda_active() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_initialized()


def _resolve_sync(sync: bool | Sync | None, device: str | None) -> Sync | None:
    """None: CUDA synchronize when CUDA is in use; True: always CUDA; False: never; or a callable."""
    if callable(sync):
        return sync
    use_cuda = _resolve_device(device) == "cuda" if sync is None else bool(sync)
    return torch.cuda.synchronize if use_cuda else None


def _resolve_device(device: str | torch.device | None) -> str:
    if device is None:
        return "cuda" if _cuda_active() else "cpu"
    return torch.device(device).type


class _Probe:
    """Measures the memory one call of `fn` adds at its peak (None: cannot measure here)."""

    source: str | None = None

    def measure(self, fn: Callable[[], Any]) -> int | None:
        fn()
        return None


class _CudaProbe(_Probe):
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


class _LinuxRssProbe(_Probe):
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


class _MaxRssProbe(_Probe):
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


def _make_probe(device: str, memory: bool) -> _Probe | None:
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
            return _Probe()
    return _Probe()


# --------------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------------


class _Runner:
    """Times single calls of one function; measures its memory in one extra call at the end."""

    def __init__(self, fn: Callable[[], Any], sync: Sync | None, clock: Clock, probe: _Probe | None) -> None:
        self.fn, self.sync, self.clock, self.probe = fn, sync, clock, probe
        self.samples: list[float] = []

    def call(self, timed: bool) -> None:
        if self.sync is not None:
            self.sync()
        t0 = self.clock()
        self.fn()
        if self.sync is not None:
            self.sync()
        elapsed = self.clock() - t0
        if timed:
            self.samples.append(elapsed)

    def timing(self, warmup: int, items_per_call: float | None) -> Timing:
        peak = self.probe.measure(self.fn) if self.probe is not None else None
        source = self.probe.source if self.probe is not None and peak is not None else None
        return Timing(tuple(self.samples), warmup, peak, source, items_per_call)


def _check(warmup: int, repeat: int, max_repeat: int, min_time_s: float) -> None:
    if warmup < 0 or repeat < 1 or max_repeat < repeat or min_time_s < 0:
        raise ValueError(
            f"need warmup >= 0, 1 <= repeat <= max_repeat, min_time_s >= 0; got warmup={warmup}, "
            f"repeat={repeat}, max_repeat={max_repeat}, min_time_s={min_time_s}"
        )


def time_fn(
    fn: Callable[[], Any],
    *,
    warmup: int = 3,
    repeat: int = 10,
    min_time_s: float = 0.0,
    max_repeat: int = 10_000,
    sync: bool | Sync | None = None,
    device: str | torch.device | None = None,
    items_per_call: float | None = None,
    memory: bool = True,
    clock: Clock = time.perf_counter,
) -> Timing:
    """Time `fn()`: `warmup` untimed calls, then at least `repeat` timed calls and `min_time_s` seconds.

    Stops at `max_repeat` calls; with `memory`, one more untimed call measures peak memory. `device`
    ("cpu"/"cuda", default: cuda if CUDA is initialised) picks the memory probe and the default sync;
    pass `device="cuda"` when `fn` first touches CUDA during warm-up. `items_per_call` enables
    `Timing.throughput()`. `clock` is injectable for tests.
    """
    _check(warmup, repeat, max_repeat, min_time_s)
    dev = _resolve_device(device)
    runner = _Runner(fn, _resolve_sync(sync, dev), clock, _make_probe(dev, memory))
    for _ in range(warmup):
        runner.call(timed=False)
    while len(runner.samples) < repeat or (sum(runner.samples) < min_time_s and len(runner.samples) < max_repeat):
        runner.call(timed=True)
    return runner.timing(warmup, items_per_call)


def compare(
    contenders: Mapping[str, Callable[[], Any]],
    *,
    baseline: str | None = None,
    warmup: int = 3,
    repeat: int = 10,
    min_time_s: float = 0.0,
    max_repeat: int = 10_000,
    sync: bool | Sync | None = None,
    device: str | torch.device | None = None,
    items_per_call: float | Mapping[str, float] | None = None,
    memory: bool = True,
    clock: Clock = time.perf_counter,
) -> Comparison:
    """Time several functions interleaved: each round calls every contender once, rotating the order.

    Rounds run until there are `repeat` of them and every contender has `min_time_s` seconds of
    samples (at most `max_repeat` rounds). `baseline` defaults to the first contender.
    `items_per_call` is one number for all or a mapping per contender. Other arguments as `time_fn`.
    """
    _check(warmup, repeat, max_repeat, min_time_s)
    names = list(contenders)
    if not names:
        raise ValueError("compare needs at least one contender")
    baseline = names[0] if baseline is None else baseline
    if baseline not in contenders:
        raise ValueError(f"baseline {baseline!r} is not a contender; choose one of {names}")
    dev = _resolve_device(device)
    sync_fn = _resolve_sync(sync, dev)
    runners = {n: _Runner(contenders[n], sync_fn, clock, _make_probe(dev, memory)) for n in names}

    def one_round(r: int, timed: bool) -> None:
        k = r % len(names)
        for name in names[k:] + names[:k]:
            runners[name].call(timed)

    for r in range(warmup):
        one_round(r, timed=False)
    rounds = 0
    while rounds < repeat or (
        min(sum(run.samples) for run in runners.values()) < min_time_s and rounds < max_repeat
    ):
        one_round(rounds, timed=True)
        rounds += 1

    def items(name: str) -> float | None:
        return items_per_call.get(name) if isinstance(items_per_call, Mapping) else items_per_call

    timings = {n: runners[n].timing(warmup, items(n)) for n in names}
    return Comparison(timings, baseline)
