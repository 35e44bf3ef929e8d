"""Timer: structure, statistics and interleaving order, with a fake clock (no wall-clock asserts)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from vidslim.bench import Timing, compare, time_fn


class FakeClock:
    """A clock that only moves when a fake workload says it took some time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def work(self, seconds: float, log: list[str] | None = None, name: str = "") -> Callable[[], None]:
        def fn() -> None:
            self.now += seconds
            if log is not None:
                log.append(name)

        return fn


def test_time_fn_samples_warmup_and_repeat() -> None:
    clock, log = FakeClock(), []
    timing = time_fn(clock.work(0.002, log, "f"), warmup=3, repeat=7, clock=clock, sync=False, memory=False)
    assert len(log) == 3 + 7  # warm-up calls run but are not timed
    assert timing.n == 7 and timing.warmup == 3
    assert timing.samples == pytest.approx((0.002,) * 7)
    assert timing.median == pytest.approx(0.002) and timing.iqr == pytest.approx(0.0)
    assert timing.peak_memory_bytes is None and timing.memory_source is None


def test_min_time_and_max_repeat() -> None:
    clock = FakeClock()
    fn = clock.work(0.125)  # a power of two: sums are exact
    assert time_fn(fn, warmup=0, repeat=2, min_time_s=1.0, clock=clock, sync=False, memory=False).n == 8
    capped = time_fn(fn, warmup=0, repeat=2, min_time_s=1.0, max_repeat=4, clock=clock, sync=False, memory=False)
    assert capped.n == 4


def test_statistics_and_throughput() -> None:
    t = Timing(samples=(0.005, 0.001, 0.003, 0.002, 0.004), items_per_call=8)
    assert t.median == pytest.approx(0.003)
    assert t.mean == pytest.approx(0.003)
    assert (t.min, t.max) == (0.001, 0.005)
    assert t.p10 == pytest.approx(0.0014)  # linear interpolation: 1 + 0.4 * (2 - 1) ms
    assert t.p90 == pytest.approx(0.0046)
    assert t.iqr == pytest.approx(0.002)  # p75 4 ms - p25 2 ms
    assert t.throughput() == pytest.approx(8 / 0.003)
    assert t.throughput(items_per_call=3) == pytest.approx(1000.0)
    d = t.to_dict()
    assert d["median_s"] == pytest.approx(0.003) and d["items_per_s"] == pytest.approx(8 / 0.003)
    assert d["samples_s"] == list(t.samples)
    assert "3.000 ms" in t.summary() and "items/s" in t.summary()
    assert math.isnan(Timing(samples=()).median)
    with pytest.raises(ValueError, match="items_per_call"):
        Timing(samples=(1.0,)).throughput()


def test_sync_called_around_every_call() -> None:
    clock, syncs = FakeClock(), []
    time_fn(clock.work(0.001), warmup=2, repeat=3, clock=clock, sync=lambda: syncs.append(1), memory=False)
    assert len(syncs) == 2 * (2 + 3)  # before starting and before stopping the clock, warm-up included


def test_compare_interleaves_round_robin_with_rotation() -> None:
    clock, log = FakeClock(), []
    contenders = {name: clock.work(cost, log, name) for name, cost in [("a", 0.001), ("b", 0.002), ("c", 0.004)]}
    result = compare(contenders, warmup=1, repeat=3, clock=clock, sync=False, memory=False)
    # warm-up round, then 3 timed rounds, each starting one place later
    assert "".join(log) == "abc" + "abc" + "bca" + "cab"
    assert result.baseline == "a"
    assert all(t.n == 3 for t in result.timings.values())
    assert result.ratio("b") == pytest.approx(2.0) and result.ratio("c") == pytest.approx(4.0)
    assert result.paired_ratio("c") == pytest.approx(4.0)
    assert result.speedup("b") == pytest.approx(0.5)
    assert result.ratios == pytest.approx({"a": 1.0, "b": 2.0, "c": 4.0})
    assert list(result.to_dict()["contenders"]) == ["a", "b", "c"]
    assert "speedup 0.25x [0.25-0.25]" in result.table()  # c takes 4x the baseline's time in every round


def test_compare_baseline_min_time_and_items() -> None:
    clock = FakeClock()
    contenders = {"fast": clock.work(0.125), "slow": clock.work(0.5)}
    result = compare(contenders, baseline="slow", warmup=0, repeat=1, min_time_s=1.0, clock=clock, sync=False,
                     memory=False, items_per_call={"fast": 4, "slow": 4})
    assert result.timings["fast"].n == 8  # rounds go on until the fastest has 1 s of samples
    assert result.timings["slow"].n == 8
    assert result.ratio("fast") == pytest.approx(0.25)
    assert result.timings["fast"].throughput() == pytest.approx(32.0)
    with pytest.raises(ValueError, match="baseline 'nope'"):
        compare(contenders, baseline="nope", clock=clock)
    with pytest.raises(ValueError, match="at least one"):
        compare({})
    with pytest.raises(ValueError, match="repeat"):
        time_fn(clock.work(0.1), repeat=0)


def test_memory_measured_in_one_extra_untimed_call() -> None:
    clock, log = FakeClock(), []
    timing = time_fn(clock.work(0.001, log, "f"), warmup=2, repeat=3, clock=clock, sync=False, device="cpu")
    assert len(log) == 2 + 3 + 1 and timing.n == 3
    assert (timing.peak_memory_bytes is None) == (timing.memory_source is None)


def _allocate(mib: int) -> Callable[[], None]:
    def fn() -> None:
        torch.ones(mib * 2**18).add_(1)  # float32: 2**18 elements per MiB, every page touched

    return fn


def test_cpu_peak_memory_sees_allocations_even_interleaved() -> None:
    timing = time_fn(_allocate(64), warmup=1, repeat=2, device="cpu", sync=False)
    if timing.memory_source != "linux_vmhwm":
        pytest.skip(f"no resettable peak RSS here ({timing.memory_source})")
    assert timing.peak_memory_bytes >= 48 * 2**20
    # 24 MiB comes from the C heap and stays cached after free; trimming before measuring still sees it
    result = compare({"big": _allocate(24), "none": lambda: None, "small": _allocate(2)}, warmup=1, repeat=3,
                     device="cpu", sync=False)
    peaks = {name: t.peak_memory_bytes for name, t in result.timings.items()}
    assert peaks["big"] >= 16 * 2**20
    assert peaks["none"] < 2**20
    assert peaks["none"] <= peaks["small"] < peaks["big"]
