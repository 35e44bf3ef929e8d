"""Paired speedups: per-round ratios, spread, bootstrap interval, load and the verdict (hand-derived values)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from vidslim.bench import compare
from vidslim.bench.spread import MAX_SPREAD, MachineLoad, PairedRatio, footnote, load_range, usable_cores


def test_paired_ratio_per_round_median_and_quartiles() -> None:
    # baseline 2 s every round; the contender 1.0, 0.8, 1.0, 1.25, 1.0 s -> speedups 2, 2.5, 2, 1.6, 2
    p = PairedRatio.of([2.0] * 5, [1.0, 0.8, 1.0, 1.25, 1.0])
    assert p.ratios == pytest.approx((2.0, 2.5, 2.0, 1.6, 2.0))
    assert p.speedup == pytest.approx(2.0)
    assert (p.low, p.high) == (pytest.approx(2.0), pytest.approx(2.0))  # numpy's linear quartiles of 1.6,2,2,2,2.5
    assert p.spread == pytest.approx(0.0) and p.reliable and p.verdict == "ok"
    lo, hi = p.ci
    assert 1.6 <= lo <= 2.0 <= hi <= 2.5
    assert p.label() == "2.00x [2.00-2.00]"


def test_wide_spread_is_unreliable_and_names_the_load() -> None:
    load = MachineLoad(before=5.8, after=4.1, cores=2)
    # speedups 1, 2, 3, 4, 5: quartiles 2 and 4, median 3 -> spread 2/3, far above MAX_SPREAD
    p = PairedRatio.of([1.0, 2.0, 3.0, 4.0, 5.0], [1.0] * 5, load=load)
    assert p.spread == pytest.approx(2 / 3)
    assert not p.reliable
    assert p.verdict == f"unreliable: load 5.8 on 2 cores, rounds spread 67% (> {MAX_SPREAD:.0%})"
    assert p.label().startswith("~3.00x? (unreliable: load 5.8 on 2 cores")
    d = p.to_dict()
    assert d["reliable"] is False and d["load_before"] == 5.8 and d["cores"] == 2 and d["rounds"] == 5


def test_table_cells_and_their_footnote() -> None:
    """A table cell shows a reliable figure with its quartiles and an unreliable one as "~3.00x?", and the footnote
    under the table carries the first unreliable verdict (with the load) and how many cells it covers."""
    load = MachineLoad(before=5.8, after=4.1, cores=2)
    steady = PairedRatio.of([2.0] * 5, [1.0, 0.8, 1.0, 1.25, 1.0], load=load)
    shaky = PairedRatio.of([1.0, 2.0, 3.0, 4.0, 5.0], [1.0] * 5, load=load)
    assert steady.cell() == "2.00x [2.00-2.00]" and shaky.cell() == "~3.00x?"
    assert footnote([steady]) is None
    note = footnote([steady, shaky])
    assert note is not None and note.startswith(f"~x?: not a figure to quote ({shaky.verdict}; 1 of 2 such)")
    assert "load 5.8 on 2 cores" in note


def test_a_spread_just_over_the_limit_is_not_printed_as_the_limit() -> None:
    # speedups 0.9, 1.0, 1.1, 1.2233, 1.3: quartiles 1.0 and 1.2233, median 1.1 -> spread 0.2233 / 1.1 = 20.3%,
    # which a whole-percent verdict would print as "rounds spread 20% (> 20%)"
    p = PairedRatio.of([0.9, 1.0, 1.1, 1.2233, 1.3], [1.0] * 5)
    assert p.spread == pytest.approx(0.2233 / 1.1) and not p.reliable
    assert p.verdict.endswith("rounds spread 20.3% (> 20%)")


def test_too_few_rounds_cannot_be_called_reliable() -> None:
    p = PairedRatio.of([2.0, 2.0], [1.0, 1.0])
    assert p.spread == 0.0 and not p.reliable and "only 2 round" in p.verdict


def test_cpu_ratios_and_mismatched_rounds() -> None:
    p = PairedRatio.of([2.0, 2.0, 2.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.25, 0.5, 0.5])
    assert p.cpu_speedup == pytest.approx(2.0)
    assert PairedRatio.of([1.0], [1.0]).cpu_speedup is None
    with pytest.raises(ValueError, match="as many"):
        PairedRatio.of([1.0, 1.0], [1.0])


def test_scaled_keeps_the_verdict_and_cpu_is_a_paired_ratio_of_its_own() -> None:
    load = MachineLoad(before=1.0, after=1.5, cores=2)
    # speedups 2, 2.5, 2, 1.6, 2 (quartiles 2.0, 2.0); CPU speedups 4, 2, 2, 1, 3 (quartiles 2, 3)
    p = PairedRatio.of([2.0] * 5, [1.0, 0.8, 1.0, 1.25, 1.0], [4.0, 2.0, 2.0, 1.0, 3.0], [1.0] * 5, load=load)
    half = p.scaled(0.5)  # e.g. a 2x speedup at a FLOP ratio of 2: realised 1.0
    assert half.ratios == pytest.approx((1.0, 1.25, 1.0, 0.8, 1.0)) and half.spread == pytest.approx(p.spread)
    assert half.cell(unit="") == "1.00 [1.00-1.00]" and half.load == load and half.cpu_speedup == pytest.approx(1.0)
    cpu = p.cpu()
    assert cpu.ratios == (4.0, 2.0, 2.0, 1.0, 3.0) and (cpu.low, cpu.speedup, cpu.high) == (2.0, 2.0, 3.0)
    assert not cpu.reliable and cpu.cell() == "~2.00x?" and "load 1.5 on 2 cores, rounds spread 50%" in cpu.verdict
    none = PairedRatio.of([1.0] * 3, [1.0] * 3).cpu()
    assert none.n == 0 and not none.reliable
    shaky = PairedRatio.of([1.0, 2.0, 3.0, 4.0, 5.0], [1.0] * 5).scaled(0.5)
    assert shaky.cell(unit="") == "~1.50?" and not shaky.reliable


def test_load_range_under_a_table() -> None:
    a = PairedRatio.of([1.0] * 3, [1.0] * 3, load=MachineLoad(before=1.24, after=1.9, cores=2))
    b = PairedRatio.of([1.0] * 3, [1.0] * 3, load=MachineLoad(before=2.5, after=None, cores=2))
    assert load_range([a, b]) == "load 1.2-2.5 on 2 cores" and load_range([a]) == "load 1.2-1.9 on 2 cores"
    assert load_range([b]) == "load 2.5 on 2 cores"
    assert load_range([PairedRatio.of([1.0], [1.0])]).startswith("load unknown on ")


def test_machine_load_snapshot() -> None:
    load = MachineLoad.start().finish()
    assert load.cores == usable_cores() >= 1
    assert load.before is None or load.before >= 0
    assert MachineLoad(None, None, 4).describe() == "load unknown on 4 cores"
    assert MachineLoad(1.0, 3.25, 2).describe() == "load 3.2 on 2 cores"  # the higher of the two


class Clocks:
    """A wall clock and a CPU clock that move only when a fake workload says so."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def work(self, wall: float, cpu: float) -> Callable[[], None]:
        def fn() -> None:
            self.wall += wall
            self.cpu += cpu

        return fn


def test_compare_records_cpu_time_and_load() -> None:
    c = Clocks()
    # the contender ran half its wall time on a CPU (it waited for a core)
    result = compare({"a": c.work(0.004, 0.004), "b": c.work(0.002, 0.001)}, warmup=1, repeat=4,
                     clock=lambda: c.wall, cpu_clock=lambda: c.cpu, sync=False, memory=False)
    a, b = result.timings["a"], result.timings["b"]
    assert a.cpu_samples == pytest.approx((0.004,) * 4) and a.cpu_share == pytest.approx(1.0)
    assert b.cpu_median == pytest.approx(0.001) and b.cpu_share == pytest.approx(0.5)
    p = result.paired("b")
    assert p.speedup == pytest.approx(2.0) and p.cpu_speedup == pytest.approx(4.0)
    assert p.cpu_share == pytest.approx(0.5) and p.reliable
    assert result.load is not None and result.load.cores >= 1
    assert result.to_dict()["contenders"]["b"]["paired"]["speedup"] == pytest.approx(2.0)
    assert not math.isnan(result.timings["a"].median)


def test_timing_threads_keep_a_given_count_and_cap_the_default_at_idle_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    from vidslim.bench import spread

    monkeypatch.setattr(spread, "usable_cores", lambda: 2)
    monkeypatch.setattr(spread, "idle_cores", lambda window=0.5: 0.9)  # another process holds one of two cores
    threads, why = spread.timing_threads(None, 2)
    assert threads == 1 and why is not None and "about 1.1 of 2 cores busy" in why and "--threads" in why
    assert spread.timing_threads(2, 2) == (2, None)  # the user's count is kept, busy or not
    monkeypatch.setattr(spread, "idle_cores", lambda window=0.5: 0.1)  # every core busy: still one thread
    assert spread.timing_threads(None, 2)[0] == 1
    monkeypatch.setattr(spread, "idle_cores", lambda window=0.5: 1.8)  # quiet enough: torch's default
    assert spread.timing_threads(None, 2) == (2, None)
    monkeypatch.setattr(spread, "idle_cores", lambda window=0.5: None)  # the system does not tell
    assert spread.timing_threads(None, 2) == (2, None)


def test_idle_cores_is_a_share_of_the_usable_cores() -> None:
    from vidslim.bench.spread import idle_cores, usable_cores

    idle = idle_cores(window=0.05)
    if idle is None:
        pytest.skip("no /proc/stat on this system")
    assert 0.0 <= idle <= usable_cores()
