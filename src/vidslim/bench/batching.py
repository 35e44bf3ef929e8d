"""The saturating batch: the smallest batch past which more videos per call stop paying.

    choice = saturating_batch(lambda b: videos_per_second_at(b), max_batch=64)
    choice.batch, choice.history          # e.g. 8, ((1, 3.1), (2, 5.9), (4, 9.8), (8, 12.4), (16, 12.6))

The batch doubles from `start` while doubling raises throughput by at least `gain` (5 % by default). The search
stops at the first doubling that gains less, and keeps the smaller batch (the larger one buys almost nothing and
costs latency and memory); it also stops at `max_batch`, when a measurement runs out of memory (the last batch that
fit is kept), or when the measurements have taken `max_seconds` in all.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import torch


@dataclasses.dataclass(frozen=True)
class BatchChoice:
    """The chosen batch, every (batch, items per second) measured in order, and why the search stopped."""

    batch: int
    history: tuple[tuple[int, float], ...]
    reason: str


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
