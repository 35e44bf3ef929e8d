"""Latency and throughput timing with warm-up, median and spread, and interleaved side-by-side comparison.

A single mean hides the noise of a shared machine, so every sample is kept and the median and
percentiles are reported. `compare` times several contenders round-robin, rotating who goes first, so
a noisy stretch of the machine hits all of them alike, and gives each one's ratio to a baseline both
as a ratio of medians and as the median of per-round ratios (paired, hence more robust to drift).

CUDA work is asynchronous: with `sync=None` (auto) the timer calls `torch.cuda.synchronize()` before
starting and before stopping the clock whenever CUDA is initialised, so a sample covers the kernels,
not just their launch.

Every sample also records the CPU seconds of the timed thread (`time.thread_time`) and every measurement the
machine's load before and after (`vidslim.bench.spread.MachineLoad`), so a report can say how busy the machine
was. `Comparison.paired(name)` gives a contender's per-round speedups over the baseline with their spread, a
bootstrap interval and a verdict ("unreliable: load 5.8 on 2 cores, ..."): use it, not a bare ratio, for any
figure a user reads.

    result = compare({"dense": dense_fn, "rlt": rlt_fn}, baseline="dense", repeat=7)
    p = result.paired("rlt")      # p.speedup, p.low, p.high, p.ci, p.reliable, p.verdict, p.label()

Peak memory (`Timing.peak_memory_bytes`) comes from one extra, untimed call after the timed ones
(`vidslim.bench.memory`), so measuring never disturbs a sample.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vidslim.bench.memory import Probe, make_probe
from vidslim.bench.spread import MachineLoad, PairedRatio

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
    cpu_samples: tuple[float, ...] = ()
    load: MachineLoad | None = None

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

    @property
    def cpu_median(self) -> float | None:
        """Median CPU seconds of the timed thread per call (None when not recorded)."""
        return float(np.median(self.cpu_samples)) if self.cpu_samples else None

    @property
    def cpu_share(self) -> float | None:
        """CPU seconds of the timed thread over wall seconds, summed over calls (well under the threads torch uses:
        the thread waited for a core)."""
        wall = sum(self.samples)
        return sum(self.cpu_samples) / wall if self.cpu_samples and wall > 0 else None

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
            "cpu_median_s": self.cpu_median, "cpu_share": self.cpu_share,
            **(self.load.to_dict() if self.load is not None else {}),
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
    load: MachineLoad | None = None

    def ratio(self, name: str) -> float:
        """Median time of `name` over median time of the baseline (< 1: faster than the baseline)."""
        return self.timings[name].median / self.timings[self.baseline].median

    def paired_ratio(self, name: str) -> float:
        """Median over rounds of (time of `name` / time of the baseline in the same round)."""
        a, b = self.timings[name].samples, self.timings[self.baseline].samples
        return float(np.median(np.asarray(a) / np.asarray(b)))

    def paired(self, name: str) -> PairedRatio:
        """`name`'s per-round speedups over the baseline, their spread, the load and the verdict."""
        a, b = self.timings[name], self.timings[self.baseline]
        share = [s for s in (a.cpu_share, b.cpu_share) if s is not None]
        return PairedRatio.of(b.samples, a.samples, b.cpu_samples, a.cpu_samples, self.load,
                              min(share) if share else None)

    def speedup(self, name: str) -> float:
        """Baseline median over `name`'s median (> 1: faster than the baseline)."""
        return 1.0 / self.ratio(name)

    @property
    def ratios(self) -> dict[str, float]:
        return {name: self.ratio(name) for name in self.timings}

    def table(self) -> str:
        """One line per contender: its summary and its paired speedup over the baseline with spread or verdict."""
        width = max(len(n) for n in self.timings)
        lines = [f"{name:<{width}}  {t.summary()}  speedup {self.paired(name).label()}"
                 for name, t in self.timings.items()]
        if self.load is not None:
            lines.append(f"({self.load.describe()}; 1-minute load before {_load(self.load.before)}, after "
                         f"{_load(self.load.after)})")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            **(self.load.to_dict() if self.load is not None else {}),
            "contenders": {
                name: {**t.to_dict(), "paired": self.paired(name).to_dict()} for name, t in self.timings.items()
            },
        }


def _load(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1f}"


# --------------------------------------------------------------------------------------------------
# timing
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




class _Runner:
    """Times single calls of one function; measures its memory in one extra call at the end."""

    def __init__(self, fn: Callable[[], Any], sync: Sync | None, clock: Clock, probe: Probe | None,
                 cpu_clock: Clock | None = time.thread_time) -> None:
        self.fn, self.sync, self.clock, self.probe, self.cpu_clock = fn, sync, clock, probe, cpu_clock
        self.samples: list[float] = []
        self.cpu: list[float] = []

    def call(self, timed: bool) -> None:
        if self.sync is not None:
            self.sync()
        c0 = self.cpu_clock() if self.cpu_clock is not None else 0.0
        t0 = self.clock()
        self.fn()
        if self.sync is not None:
            self.sync()
        elapsed = self.clock() - t0
        if timed:
            self.samples.append(elapsed)
            if self.cpu_clock is not None:
                self.cpu.append(self.cpu_clock() - c0)

    def timing(self, warmup: int, items_per_call: float | None, load: MachineLoad | None = None) -> Timing:
        peak = self.probe.measure(self.fn) if self.probe is not None else None
        source = self.probe.source if self.probe is not None and peak is not None else None
        return Timing(tuple(self.samples), warmup, peak, source, items_per_call, tuple(self.cpu), load)


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
    cpu_clock: Clock | None = time.thread_time,
    progress: Callable[[], Any] | None = None,
) -> Timing:
    """Time `fn()`: `warmup` untimed calls, then at least `repeat` timed calls and `min_time_s` seconds.

    Stops at `max_repeat` calls; with `memory`, one more untimed call measures peak memory. `device`
    ("cpu"/"cuda", default: cuda if CUDA is initialised) picks the memory probe and the default sync;
    pass `device="cuda"` when `fn` first touches CUDA during warm-up. `items_per_call` enables
    `Timing.throughput()`. `clock` and `cpu_clock` (None: no CPU time) are injectable for tests; `progress` is
    called after every call (a progress bar's update).
    """
    _check(warmup, repeat, max_repeat, min_time_s)
    dev = _resolve_device(device)
    runner = _Runner(fn, _resolve_sync(sync, dev), clock, make_probe(dev, memory), cpu_clock)
    load = MachineLoad.start()
    for _ in range(warmup):
        runner.call(timed=False)
        if progress is not None:
            progress()
    while len(runner.samples) < repeat or (sum(runner.samples) < min_time_s and len(runner.samples) < max_repeat):
        runner.call(timed=True)
        if progress is not None:
            progress()
    return runner.timing(warmup, items_per_call, load.finish())


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
    cpu_clock: Clock | None = time.thread_time,
    progress: Callable[[], Any] | None = None,
) -> Comparison:
    """Time several functions interleaved: each round calls every contender once, rotating the order.

    Rounds run until there are `repeat` of them and every contender has `min_time_s` seconds of
    samples (at most `max_repeat` rounds). `baseline` defaults to the first contender.
    `items_per_call` is one number for all or a mapping per contender. `progress` is called after every round.
    Other arguments as `time_fn`. With two contenders the order alternates A B, B A, A B ...
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
    runners = {n: _Runner(contenders[n], sync_fn, clock, make_probe(dev, memory), cpu_clock) for n in names}
    load = MachineLoad.start()

    def one_round(r: int, timed: bool) -> None:
        k = r % len(names)
        for name in names[k:] + names[:k]:
            runners[name].call(timed)

    for r in range(warmup):
        one_round(r, timed=False)
        if progress is not None:
            progress()
    rounds = 0
    while rounds < repeat or (
        min(sum(run.samples) for run in runners.values()) < min_time_s and rounds < max_repeat
    ):
        one_round(rounds, timed=True)
        rounds += 1
        if progress is not None:
            progress()
    load = load.finish()

    def items(name: str) -> float | None:
        return items_per_call.get(name) if isinstance(items_per_call, Mapping) else items_per_call

    timings = {n: runners[n].timing(warmup, items(n), load) for n in names}
    return Comparison(timings, baseline, load)
