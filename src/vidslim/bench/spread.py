"""How far a measured speedup can be trusted: per-round paired ratios, their spread, the machine's load, a verdict.

    load = MachineLoad.capture(before=True) ... load = load.finish()      # 1-minute load average, usable cores
    paired = PairedRatio.of(baseline_samples, samples, load=load)         # speedup = baseline time / time, per round
    paired.speedup, paired.low, paired.high, paired.ci                    # median, IQR, bootstrap 95% CI of the median
    paired.reliable, paired.verdict                                       # "unreliable: load 5.8 on 2 cores, ..."
    paired.label()                                      # "2.04x [1.98-2.10]" or "~1.4x? (unreliable: ...)"
    paired.cell(), footnote([paired, ...])              # "~1.40x?" in a table, the verdict once under it
    paired.scaled(1 / flop_ratio).cell(unit="")        # realised share "0.98 [0.95-1.01]": same rounds, same verdict
    paired.cpu()                                       # the same figures from the timed thread's CPU seconds
    load_range([paired, ...])                          # "load 1.2-1.9 on 2 cores", under every table

A ratio taken inside one round (the contender and the baseline called back to back, order alternating) cancels
whatever slowed the machine down for that round; the rounds' ratios still scatter when another process takes the
cores in the middle of one call but not the other. The spread of those ratios, not the machine's load, decides:
the figure is unreliable when the interquartile range of the per-round speedups is wider than `MAX_SPREAD` of
their median (relative half-width above `MAX_SPREAD / 2`), or when fewer than `MIN_ROUNDS` rounds ran. The load
is reported beside it so a reader sees why. `MAX_SPREAD` comes from measuring RLT on videomae-b16 with one torch
thread, as the machine was and beside two busy processes (benchmarks/timer_under_load.py; BENCHMARKS.md has the
figures): the paired median held within a few percent while the relative IQR of the rounds grew roughly threefold
under load, staying under `MAX_SPREAD` when the median held; a wider scatter is where the median stops being
reproducible.

The CPU time of the timed thread is kept beside wall time: `cpu_share` (CPU seconds over wall seconds) far below
the threads torch runs on means the thread was waiting for a core, i.e. the machine was busy during the call.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

#: the widest relative interquartile range (q75 - q25) / median of per-round speedups still called reliable
MAX_SPREAD = 0.20
#: fewer rounds than this cannot show a spread, so the figure is not called reliable
MIN_ROUNDS = 3
#: bootstrap resamples for the confidence interval of the median (fixed seed: the same samples give the same CI)
BOOTSTRAP = 2000


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system tells it, else every core)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load_average() -> float | None:
    """The 1-minute load average (runnable processes), None where the system does not report one."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def idle_cores(window: float = 0.5) -> float | None:
    """How many cores sat idle over the next `window` seconds (Linux /proc/stat: the idle and iowait share of all
    cores' time, times the core count, at most the cores this process may use), None where the system does not
    tell. Call it while this process is idle: what it measures is what other processes leave free."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
        return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields[:8])

    try:
        idle0, total0 = sample()
        time.sleep(window)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return min(float(usable_cores()), (idle1 - idle0) / (total1 - total0) * (os.cpu_count() or 1))


def timing_threads(requested: int | None, default: int) -> tuple[int, str | None]:
    """The torch threads to time with, and a line saying why when it is fewer than `default` (torch's own count).

    A thread count given by the user is kept. Otherwise the threads are capped at the cores other processes leave
    idle (at least one): a thread that waits for a busy core stalls its siblings at every parallel region, and small
    operations (a reducer's) suffer most, so an oversubscribed run misreports the methods' speedups, consistently
    enough that the spread of its rounds does not show it."""
    if requested:
        return requested, None
    idle = idle_cores()
    if idle is None or default <= 1:
        return default, None
    threads = max(1, min(default, math.floor(idle + 0.25)))
    if threads >= default:
        return default, None
    busy = usable_cores() - idle
    return threads, (f"other processes keep about {busy:.1f} of {usable_cores()} cores busy: timing with {threads} "
                     f"thread(s) instead of {default}, so no thread waits for a core (--threads N to choose)")


@dataclasses.dataclass(frozen=True)
class MachineLoad:
    """The 1-minute load average before and after a measurement and the cores this process could use."""

    before: float | None
    after: float | None
    cores: int

    @classmethod
    def start(cls) -> MachineLoad:
        """The load now (call `finish` when the measurement ends)."""
        return cls(load_average(), None, usable_cores())

    def finish(self) -> MachineLoad:
        return dataclasses.replace(self, after=load_average())

    @property
    def peak(self) -> float | None:
        values = [v for v in (self.before, self.after) if v is not None]
        return max(values) if values else None

    def describe(self) -> str:
        """ "load 5.8 on 2 cores" (the higher of before and after), or "load unknown on 2 cores"."""
        peak = self.peak
        return f"load {'unknown' if peak is None else f'{peak:.1f}'} on {self.cores} cores"

    def to_dict(self) -> dict[str, Any]:
        return {"load_before": self.before, "load_after": self.after, "cores": self.cores}


def _median_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the median (seeded, so reproducible)."""
    if len(values) < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(0)
    draws = rng.choice(values, size=(BOOTSTRAP, len(values)), replace=True)
    medians = np.median(draws, axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(medians, tail)), float(np.percentile(medians, 100 - tail))


@dataclasses.dataclass(frozen=True)
class PairedRatio:
    """Per-round speedups of one contender over the baseline (baseline time / contender time in the same round)."""

    ratios: tuple[float, ...]
    cpu_ratios: tuple[float, ...] = ()
    load: MachineLoad | None = None
    cpu_share: float | None = None

    @classmethod
    def of(
        cls,
        baseline: Sequence[float],
        contender: Sequence[float],
        baseline_cpu: Sequence[float] = (),
        contender_cpu: Sequence[float] = (),
        load: MachineLoad | None = None,
        cpu_share: float | None = None,
    ) -> PairedRatio:
        """From the baseline's and the contender's per-round seconds (wall, and CPU of the timed thread)."""
        if len(baseline) != len(contender):
            raise ValueError(f"paired rounds need as many baseline as contender samples ({len(baseline)} vs "
                             f"{len(contender)})")
        ratios = tuple(float(b / c) if c > 0 else math.nan for b, c in zip(baseline, contender, strict=True))
        cpu = ()
        if len(baseline_cpu) == len(contender_cpu) == len(baseline):
            cpu = tuple(float(b / c) if c > 0 else math.nan for b, c in zip(baseline_cpu, contender_cpu, strict=True))
        return cls(ratios, cpu, load, cpu_share)

    def _q(self, values: Sequence[float], q: float) -> float:
        finite = [v for v in values if math.isfinite(v)]
        return float(np.percentile(finite, q)) if finite else math.nan

    @property
    def n(self) -> int:
        return len(self.ratios)

    @property
    def speedup(self) -> float:
        """Median per-round speedup (> 1: the contender is faster)."""
        return self._q(self.ratios, 50)

    @property
    def low(self) -> float:
        """25th percentile of the per-round speedups."""
        return self._q(self.ratios, 25)

    @property
    def high(self) -> float:
        """75th percentile of the per-round speedups."""
        return self._q(self.ratios, 75)

    @property
    def ci(self) -> tuple[float, float]:
        """95% bootstrap confidence interval of the median speedup."""
        finite = np.asarray([v for v in self.ratios if math.isfinite(v)])
        return _median_ci(finite)

    @property
    def cpu_speedup(self) -> float | None:
        """Median per-round ratio of the timed thread's CPU seconds (None when not recorded)."""
        return self._q(self.cpu_ratios, 50) if self.cpu_ratios else None

    @property
    def spread(self) -> float:
        """Relative interquartile range (q75 - q25) / median of the per-round speedups."""
        mid = self.speedup
        return (self.high - self.low) / mid if mid and math.isfinite(mid) else math.inf

    @property
    def reliable(self) -> bool:
        return self.n >= MIN_ROUNDS and self.spread <= MAX_SPREAD

    @property
    def verdict(self) -> str:
        """"ok" or "unreliable: load 5.8 on 2 cores, rounds spread 34% (> 20%)" (or "only 2 rounds")."""
        if self.reliable:
            return "ok"
        where = self.load.describe() if self.load is not None else "load unknown"
        if self.n < MIN_ROUNDS:
            return f"unreliable: {where}, only {self.n} round(s) (need {MIN_ROUNDS})"
        digits = 0 if round(self.spread * 100) > round(MAX_SPREAD * 100) else 1  # never "spread 20% (> 20%)"
        return f"unreliable: {where}, rounds spread {self.spread:.{digits}%} (> {MAX_SPREAD:.0%})"

    def scaled(self, factor: float) -> PairedRatio:
        """Every round's ratio times `factor` (an exact number such as 1 / FLOP ratio, for the realised share, or 2
        for a throughput gain from doubling the batch): the relative spread, hence the verdict, is unchanged."""
        return dataclasses.replace(self, ratios=tuple(r * factor for r in self.ratios),
                                   cpu_ratios=tuple(r * factor for r in self.cpu_ratios))

    def cpu(self) -> PairedRatio:
        """The per-round ratios of the timed thread's CPU seconds as a `PairedRatio` (spread and verdict of their
        own); empty (never reliable) when CPU time was not recorded. Meaningful with one torch thread on the CPU."""
        return dataclasses.replace(self, ratios=self.cpu_ratios, cpu_ratios=())

    def label(self, digits: int = 2, unit: str = "x") -> str:
        """The figure as text that cannot be read as a plain fact when unreliable."""
        if self.reliable:
            return f"{self.speedup:.{digits}f}{unit} [{self.low:.{digits}f}-{self.high:.{digits}f}]"
        return f"~{self.speedup:.{digits}f}{unit}? ({self.verdict})"

    def cell(self, digits: int = 2, unit: str = "x") -> str:
        """The figure for a table cell: `label()` when reliable, else "~1.40x?" (the verdict goes in `footnote`)."""
        return self.label(digits, unit) if self.reliable else f"~{self.speedup:.{digits}f}{unit}?"

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.ci
        return {
            "speedup": _num(self.speedup), "speedup_q25": _num(self.low), "speedup_q75": _num(self.high),
            "speedup_ci95": [_num(lo), _num(hi)], "spread": _num(self.spread), "rounds": self.n,
            "cpu_speedup": _num(self.cpu_speedup), "cpu_share": _num(self.cpu_share),
            "reliable": self.reliable, "verdict": self.verdict,
            **(self.load.to_dict() if self.load is not None else {}),
            "round_speedups": [_num(r) for r in self.ratios],
        }  # fmt: skip


def footnote(pairs: Sequence[PairedRatio]) -> str | None:
    """The line under a table whose cells come from `PairedRatio.cell`: why a "~x?" figure is not one to quote
    (the first unreliable verdict), or None when every figure is reliable."""
    return unreliable_note([p.verdict for p in pairs if not p.reliable], len(pairs))


def unreliable_note(verdicts: Sequence[str], total: int, more: str = "rounds") -> str | None:
    """The footnote for `total` figures of which those with `verdicts` were unreliable (None when none was):
    the first verdict, how many, and what to rerun with (`more`: "rounds", "--repeat", "--rounds")."""
    if not verdicts:
        return None
    return (f"~x?: not a figure to quote ({verdicts[0]}; {len(verdicts)} of {total} such); rerun on a quieter machine "
            f"or with more {more}")


def load_range(pairs: Sequence[PairedRatio]) -> str:
    """ "load 1.2-1.9 on 2 cores" over the measurements behind `pairs` (the 1-minute load before and after each),
    for the line under a table: the load is reported with every figure, reliable or not."""
    loads = [p.load for p in pairs if p.load is not None]
    return load_span([v for load in loads for v in (load.before, load.after)], loads[0].cores if loads else None)


def load_span(values: Sequence[float | None], cores: int | None = None) -> str:
    """ "load 1.2-1.9 on 2 cores" from 1-minute load readings (None: not reported), for a line under a table."""
    known = [v for v in values if v is not None]
    cores = cores or usable_cores()
    if not known:
        return f"load unknown on {cores} cores"
    low, high = min(known), max(known)
    return f"load {low:.1f}{'' if f'{low:.1f}' == f'{high:.1f}' else f'-{high:.1f}'} on {cores} cores"


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


__all__ = [
    "MAX_SPREAD", "MIN_ROUNDS", "MachineLoad", "PairedRatio", "footnote", "idle_cores", "load_average", "load_range",
    "load_span", "timing_threads", "unreliable_note", "usable_cores",
]
