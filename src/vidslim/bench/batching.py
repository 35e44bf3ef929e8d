"""The saturating batch: the smallest batch past which more videos per call stop paying.

    choice = paired_saturating_batch(lambda b: (lambda: model(batch_of(b))), max_batch=64)
    choice.batch, choice.history          # e.g. 8, ((1, 3.1), (2, 5.9), (4, 9.8), (8, 12.4), (16, 12.6))
    choice.gains[-1].cell(), choice.describe()   # "1.02x [1.00-1.04]": throughput at 16 over 8, per round
    choice = saturating_batch(lambda b: videos_per_second_at(b), max_batch=64)   # from separate measurements

The batch doubles from `start` while doubling raises throughput by at least `gain` (5 % by default). The search
stops at the first doubling that gains less, and keeps the smaller batch (the larger one buys almost nothing and
costs latency and memory); it also stops at `max_batch`, when a measurement runs out of memory (the last batch that
fit is kept), or when the measurements have taken `max_seconds` in all.

`paired_saturating_batch` decides each doubling as every other speedup is decided: batch b and 2b are timed
interleaved, round by round (`vidslim.bench.timer.compare`), and the gain is the median over rounds of that round's
throughput ratio (2 x time at b / time at 2b), with its interquartile range and the timer's verdict
(`PairedRatio`), so a busy stretch of the machine during one batch's calls does not decide the batch.
`saturating_batch` takes one throughput per batch from separate measurements, for callers that have only those.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import torch

from vidslim.bench.spread import MIN_ROUNDS, PairedRatio, footnote
from vidslim.bench.timer import compare


@dataclasses.dataclass(frozen=True)
class BatchChoice:
    """The chosen batch, every (batch, items per second) measured in order, and why the search stopped."""

    batch: int
    history: tuple[tuple[int, float], ...]
    reason: str
    #: per doubling tried (paired search only): throughput at 2b over throughput at b, per interleaved round
    gains: tuple[PairedRatio, ...] = ()

    def describe(self) -> str:
        """One line: the batch, why, videos/s per batch tried and each doubling's gain with its spread."""
        tried = ", ".join(f"{b}: {rate:.2f}" for b, rate in self.history)
        text = f"{self.batch} ({self.reason}; videos/s {tried}"
        if self.gains:
            steps = ", ".join(f"{b}->{2 * b} {g.cell()}" for (b, _), g in zip(self.history, self.gains, strict=False))
            text += f"; throughput gain per doubling, paired: {steps}"
        note = footnote(self.gains) if self.gains else None
        return text + ")" + (f"; {note}" if note else "")

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "reason": self.reason, "history": [list(h) for h in self.history],
                "gains": [g.to_dict() for g in self.gains]}


def _out_of_memory(error: BaseException) -> bool:
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def saturating_batch(
    throughput: Callable[[int], float],
    *,
    start: int = 1,
    max_batch: int = 256,
    gain: float = 0.05,
    max_seconds: float = 120.0,
    clock: Callable[[], float] = time.perf_counter,
) -> BatchChoice:
    """Double the batch from `start` until `throughput(batch)` (items/s) rises by less than `gain` (see module doc).

    `throughput` is called once per batch tried; `clock` is injectable for tests.
    """
    if start < 1 or max_batch < start or gain < 0 or max_seconds <= 0:
        raise ValueError(
            f"need 1 <= start <= max_batch, gain >= 0, max_seconds > 0; got start={start}, max_batch={max_batch}, "
            f"gain={gain}, max_seconds={max_seconds}"
        )
    began = clock()
    batch, best = start, throughput(start)
    history = [(start, best)]
    while True:
        if batch * 2 > max_batch:
            return BatchChoice(batch, tuple(history), f"reached max batch {max_batch}")
        if clock() - began >= max_seconds:
            return BatchChoice(batch, tuple(history), f"time cap of {max_seconds:g} s")
        try:
            rate = throughput(batch * 2)
        except (RuntimeError, MemoryError) as error:
            if not _out_of_memory(error):
                raise
            return BatchChoice(batch, tuple(history), f"batch {batch * 2} ran out of memory")
        history.append((batch * 2, rate))
        if rate < best * (1.0 + gain):
            return BatchChoice(batch, tuple(history), f"doubling to {batch * 2} gained < {gain:.0%}")
        batch, best = batch * 2, rate


def paired_saturating_batch(
    call_at: Callable[[int], Callable[[], Any]],
    *,
    start: int = 1,
    max_batch: int = 256,
    gain: float = 0.05,
    max_seconds: float = 120.0,
    rounds: int = 5,
    device: str | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> BatchChoice:
    """Double the batch from `start` while batch 2b, timed interleaved with batch b, has a median per-round
    throughput gain of at least `gain` (see the module doc). `call_at(b)` returns a function running one call at
    batch b; `rounds` paired rounds per doubling (at least `MIN_ROUNDS`, the fewest the timer can call reliable);
    `clock` times the calls and the `max_seconds` budget (injectable for tests)."""
    if start < 1 or max_batch < start or gain < 0 or max_seconds <= 0:
        raise ValueError(
            f"need 1 <= start <= max_batch, gain >= 0, max_seconds > 0; got start={start}, max_batch={max_batch}, "
            f"gain={gain}, max_seconds={max_seconds}"
        )
    rounds = max(rounds, MIN_ROUNDS)
    began = clock()
    batch, history, gains = start, [], []

    def alone() -> list[tuple[int, float]]:  # nothing to compare with: the one batch that fits, timed by itself
        timing = compare({"b": call_at(batch)}, warmup=1, repeat=rounds, memory=False, device=device, clock=clock)
        return [(batch, batch / timing.timings["b"].median)]

    while True:
        if batch * 2 > max_batch:
            return BatchChoice(batch, tuple(history or alone()), f"reached max batch {max_batch}", tuple(gains))
        if history and clock() - began >= max_seconds:
            return BatchChoice(batch, tuple(history), f"time cap of {max_seconds:g} s", tuple(gains))
        try:
            pair = compare({"b": call_at(batch), "2b": call_at(batch * 2)}, baseline="b", warmup=1, repeat=rounds,
                           memory=False, device=device, clock=clock)
        except (RuntimeError, MemoryError) as error:
            if not _out_of_memory(error):
                raise
            return BatchChoice(batch, tuple(history or alone()), f"batch {batch * 2} ran out of memory", tuple(gains))
        if not history:
            history.append((batch, batch / pair.timings["b"].median))
        history.append((batch * 2, batch * 2 / pair.timings["2b"].median))
        step = pair.paired("2b").scaled(2.0)  # per round: (2b / time at 2b) / (b / time at b)
        gains.append(step)
        if step.speedup < 1.0 + gain:
            return BatchChoice(batch, tuple(history), f"doubling to {batch * 2} gained < {gain:.0%}", tuple(gains))
        batch *= 2
