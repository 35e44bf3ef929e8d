"""Time contenders against a baseline until their paired speedups are precise, on the clock that holds under load.

    found = time_until_precise({"dense": f, "r4": g, "r5": h}, items=3, repeat=5, max_rounds=15, clock="auto")
    found["r4"].speedup, found["r4"].paired.verdict, found["r4"].to_dict()   # wall and CPU figures both kept

Rounds come in chunks of `repeat` (`vidslim.bench.timer.compare`: interleaved, order rotating) and are pooled; timing
stops once every contender's paired speedup on the deciding clock is reliable (`PairedRatio.reliable`) and its 95%
bootstrap interval is within `precision` of its median on either side, or after `max_rounds`.

Which clock decides: the wall clock is what a user waits for, but on a shared machine another process takes the
core in the middle of some calls and not others, so per-round wall ratios scatter (a busy 2-core machine: half-width
of tens of percent). With one torch thread on the CPU every operation runs on the timed thread, so that thread's CPU
seconds (`time.thread_time`) are the work itself and a wait for a core does not count; their ratio is what the wall
ratio is on a quiet machine. `clock="auto"` therefore decides on CPU time with one CPU thread and on wall time
otherwise (several threads, or CUDA, where the work is not on the timed thread). Both figures are always reported.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from vidslim.bench.spread import MachineLoad, PairedRatio
from vidslim.errors import ConfigError

CLOCKS = ("auto", "wall", "cpu")


def pick_clock(clock: str) -> str:
    """"wall" or "cpu" for `clock` ("auto": CPU time with one CPU thread and no CUDA, else wall)."""
    if clock not in CLOCKS:
        raise ConfigError(f"--clock {clock!r}: choose one of {', '.join(CLOCKS)}")
    if clock != "auto":
        return clock
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    return "cpu" if torch.get_num_threads() == 1 and not cuda else "wall"


@dataclasses.dataclass(frozen=True)
class Measured:
    """One contender against the baseline: paired speedups on both clocks, median ms per item, the deciding clock."""

    wall: PairedRatio
    cpu: PairedRatio | None
    ms: float
    cpu_ms: float | None
    clock: str

    @property
    def paired(self) -> PairedRatio:
        """The paired speedup on the deciding clock."""
        return self.cpu if self.clock == "cpu" and self.cpu is not None else self.wall

    @property
    def speedup(self) -> float:
        return self.paired.speedup

    @property
    def time_ms(self) -> float:
        """Median ms per item on the deciding clock."""
        return self.cpu_ms if self.clock == "cpu" and self.cpu_ms is not None else self.ms

    def to_dict(self) -> dict[str, Any]:
        wall = self.wall.to_dict()
        cpu = None if self.cpu is None or not math.isfinite(self.cpu.speedup) else self.cpu.speedup
        return {**self.paired.to_dict(), "clock": self.clock, "cpu_speedup": cpu, "ms": self.ms, "cpu_ms": self.cpu_ms,
                "wall_speedup": wall["speedup"], "wall_speedup_q25": wall["speedup_q25"],
                "wall_speedup_q75": wall["speedup_q75"], "wall_reliable": wall["reliable"],
                "wall_verdict": wall["verdict"]}  # fmt: skip


def precise(paired: PairedRatio, precision: float) -> bool:
    """Reliable, and the 95% interval of the median within `precision` of it on either side."""
    lo, hi = paired.ci
    mid = paired.speedup
    return paired.reliable and math.isfinite(lo) and max(mid - lo, hi - mid) <= precision * mid


def time_until_precise(
    contenders: Mapping[str, Callable[[], Any]],
    *,
    items: int = 1,
    repeat: int = 5,
    max_rounds: int = 15,
    precision: float = 0.05,
    clock: str = "auto",
    wall_clock: Callable[[], float] = time.perf_counter,
    cpu_clock: Callable[[], float] = time.thread_time,
    progress: Callable[[int], Any] | None = None,
) -> dict[str, Measured]:
    """Every contender against the first (the baseline, which gets its own ratio of 1), in pooled chunks of
    `repeat` interleaved rounds until precise (module doc); `items` per call turns seconds into ms per item;
    `progress(rounds)` is called after every chunk."""
    from vidslim.bench.timer import compare

    names = list(contenders)
    use = pick_clock(clock)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    load = MachineLoad.start()
    rounds, found = 0, {}
    while True:
        part = compare(contenders, warmup=1 if rounds == 0 else 0, repeat=repeat, memory=False, clock=wall_clock,
                       cpu_clock=cpu_clock)  # fmt: skip
        for n in names:
            wall[n] += part.timings[n].samples
            cpu[n] += part.timings[n].cpu_samples
        rounds += repeat
        finished = load.finish()
        found = {n: _measured(wall, cpu, names[0], n, finished, items, use) for n in names}
        if progress is not None:
            progress(rounds)
        if rounds + repeat > max_rounds or all(precise(found[n].paired, precision) for n in names[1:]):
            return found


def _measured(wall: dict[str, list[float]], cpu: dict[str, list[float]], base: str, name: str, load: MachineLoad,
              items: int, clock: str) -> Measured:
    share = sum(cpu[name]) / sum(wall[name]) if sum(wall[name]) > 0 and cpu[name] else None
    w = PairedRatio.of(wall[base], wall[name], cpu[base], cpu[name], load, share)
    c = PairedRatio.of(cpu[base], cpu[name], load=load, cpu_share=share) if len(cpu[name]) == len(wall[name]) else None
    ms = float(np.median(wall[name])) * 1e3 / items
    cpu_ms = float(np.median(cpu[name])) * 1e3 / items if cpu[name] else None
    return Measured(w, c, ms, cpu_ms, clock)


__all__ = ["CLOCKS", "Measured", "pick_clock", "precise", "time_until_precise"]
