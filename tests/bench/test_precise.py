"""Timing until precise: chunks pooled until the paired speedup is tight, on the clock that a busy machine
does not skew (the timed thread's CPU seconds with one thread)."""

from __future__ import annotations

import itertools

import pytest
import torch

from vidslim.bench.precise import pick_clock, precise, time_until_precise
from vidslim.bench.spread import PairedRatio
from vidslim.errors import ConfigError


class FakeClocks:
    """Wall and CPU clocks that advance by what the contender being called costs: CPU seconds exactly its work,
    wall seconds its work plus a wait for a core drawn from `waits` (another process taking the core)."""

    def __init__(self, waits: list[float]) -> None:
        self.wall = self.cpu = 0.0
        self.waits = itertools.cycle(waits)

    def work(self, seconds: float) -> None:
        self.cpu += seconds
        self.wall += seconds + next(self.waits)


def test_cpu_clock_sees_the_work_and_not_the_waits() -> None:
    clocks = FakeClocks([0.0, 0.9, 0.0, 0.0, 2.0, 0.3, 0.0])  # a busy machine: waits of up to twice the work
    found = time_until_precise({"dense": lambda: clocks.work(1.0), "half": lambda: clocks.work(0.5)}, items=2,
                               repeat=3, max_rounds=12, clock="cpu", wall_clock=lambda: clocks.wall,
                               cpu_clock=lambda: clocks.cpu)  # fmt: skip
    half = found["half"]
    assert half.clock == "cpu" and half.speedup == pytest.approx(2.0) and half.paired.reliable
    assert half.paired.n == 3  # precise after the first chunk: no more rounds spent
    assert half.cpu_ms == pytest.approx(250.0)  # 0.5 s per call of 2 items
    assert not half.wall.reliable  # the wall clock's rounds scatter with the waits
    assert found["dense"].speedup == pytest.approx(1.0)
    d = half.to_dict()
    assert d["clock"] == "cpu" and d["speedup"] == pytest.approx(2.0) and d["wall_reliable"] is False


def test_a_scattered_clock_gets_more_rounds_up_to_the_cap() -> None:
    clocks = FakeClocks([0.0, 0.9, 0.0, 0.0, 2.0, 0.3, 0.0])
    found = time_until_precise({"dense": lambda: clocks.work(1.0), "half": lambda: clocks.work(0.5)}, repeat=3,
                               max_rounds=9, clock="wall", wall_clock=lambda: clocks.wall,
                               cpu_clock=lambda: clocks.cpu)  # fmt: skip
    assert found["half"].clock == "wall" and found["half"].paired.n == 9


def test_precise_needs_reliable_and_a_tight_interval() -> None:
    tight = PairedRatio.of([1.0] * 6, [0.5, 0.5, 0.49, 0.51, 0.5, 0.5])
    loose = PairedRatio.of([1.0] * 6, [0.5, 0.4, 0.6, 0.45, 0.55, 0.5])
    assert precise(tight, 0.05) and not precise(loose, 0.05) and precise(loose, 0.5)
    assert not precise(PairedRatio.of([1.0, 1.0], [0.5, 0.5]), 0.5)  # two rounds are never reliable


def test_auto_clock_is_cpu_with_one_thread_only() -> None:
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert pick_clock("auto") == "cpu"
        torch.set_num_threads(2)
        assert pick_clock("auto") == "wall" and pick_clock("cpu") == "cpu"
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(ConfigError, match="--clock"):
        pick_clock("gpu")
