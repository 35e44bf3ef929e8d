"""The saturating batch search on injected throughputs: where it stops, and why."""

from __future__ import annotations

import pytest
import torch

from vidslim.bench.batching import paired_saturating_batch, saturating_batch


def rates(table: dict[int, float]):
    calls: list[int] = []

    def throughput(batch: int) -> float:
        calls.append(batch)
        return table[batch]

    return throughput, calls


def test_stops_at_the_first_doubling_that_gains_less_than_five_percent() -> None:
    throughput, calls = rates({1: 10.0, 2: 19.0, 4: 30.0, 8: 31.0, 16: 60.0})
    choice = saturating_batch(throughput)
    assert choice.batch == 4 and calls == [1, 2, 4, 8]  # 31 < 30 * 1.05: keep 4, never try 16
    assert choice.history == ((1, 10.0), (2, 19.0), (4, 30.0), (8, 31.0)) and "gained < 5%" in choice.reason


def test_max_batch_and_out_of_memory_stop_the_search() -> None:
    throughput, calls = rates({1: 1.0, 2: 2.0, 4: 4.0, 8: 8.0})
    assert saturating_batch(throughput, max_batch=4).batch == 4 and calls == [1, 2, 4]

    def oom_at_8(batch: int) -> float:
        if batch >= 8:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return float(batch)

    choice = saturating_batch(oom_at_8)
    assert choice.batch == 4 and "ran out of memory" in choice.reason

    def broken(batch: int) -> float:
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        saturating_batch(lambda b: 1.0 if b == 1 else broken(b))


def test_time_cap_with_an_injected_clock() -> None:
    now = [0.0]

    def throughput(batch: int) -> float:
        now[0] += 50.0  # every measurement takes 50 s
        return float(batch)

    choice = saturating_batch(throughput, max_seconds=120.0, clock=lambda: now[0])
    assert choice.batch == 4 and "time cap" in choice.reason  # measured 1, 2, 4 (150 s), then stopped


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="start"):
        saturating_batch(lambda b: 1.0, start=4, max_batch=2)


class Machine:
    """A fake clock: each call at batch b advances it by cost[b] x the slowdown of the round it runs in."""

    def __init__(self, cost: dict[int, float], slowdown: tuple[float, ...] = (1.0,)) -> None:
        self.now, self.calls, self.cost, self.slowdown = 0.0, 0, cost, slowdown

    def clock(self) -> float:
        return self.now

    def call_at(self, batch: int):
        def call() -> None:
            if batch not in self.cost:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
            self.now += self.cost[batch] * self.slowdown[(self.calls // 2) % len(self.slowdown)]  # 2 calls a round
            self.calls += 1

        return call


def test_paired_search_stops_where_the_per_round_gain_falls_under_five_percent() -> None:
    machine = Machine({1: 1.0, 2: 1.1, 4: 2.0, 8: 3.9})
    choice = paired_saturating_batch(machine.call_at, rounds=3, clock=machine.clock)
    # gains 2 x 1.0 / 1.1 = 1.818, 2 x 1.1 / 2.0 = 1.1, 2 x 2.0 / 3.9 = 1.026 < 1.05: keep 4
    assert choice.batch == 4 and "doubling to 8 gained < 5%" in choice.reason
    assert [g.speedup for g in choice.gains] == pytest.approx([2 / 1.1, 1.1, 4 / 3.9])
    assert [b for b, _ in choice.history] == [1, 2, 4, 8]
    assert [rate for _, rate in choice.history] == pytest.approx([1.0, 2 / 1.1, 2.0, 8 / 3.9])
    assert all(g.n == 3 and g.reliable for g in choice.gains)
    text = choice.describe()
    assert text.startswith("4 (doubling to 8 gained < 5%; videos/s 1: 1.00, 2: 1.82, 4: 2.00, 8: 2.05;")
    assert "1->2 1.82x [1.82-1.82], 2->4 1.10x [1.10-1.10], 4->8 1.03x [1.03-1.03])" in text
    out = choice.to_dict()
    assert out["batch"] == 4 and len(out["gains"]) == 3 and out["gains"][2]["speedup_q25"] == pytest.approx(4 / 3.9)


def test_paired_gain_holds_when_the_machine_slows_down_between_rounds() -> None:
    # every other round runs 3x slower (another process took the core): each round's ratio is unchanged
    machine = Machine({1: 1.0, 2: 1.25, 4: 2.5}, slowdown=(1.0, 3.0))
    choice = paired_saturating_batch(machine.call_at, rounds=4, max_batch=4, clock=machine.clock)
    assert [g.ratios for g in choice.gains] == [pytest.approx((1.6,) * 4), pytest.approx((1.0,) * 4)]
    assert choice.batch == 2 and all(g.spread == 0 for g in choice.gains)


def test_paired_search_out_of_memory_max_batch_and_too_few_rounds() -> None:
    machine = Machine({1: 1.0, 2: 1.0})  # batch 4 runs out of memory
    choice = paired_saturating_batch(machine.call_at, rounds=1, clock=machine.clock)
    assert choice.batch == 2 and choice.reason == "batch 4 ran out of memory" and len(choice.gains) == 1
    assert choice.gains[0].n == 3  # 1 round asked for, raised to the 3 the timer needs to call a figure reliable
    alone = paired_saturating_batch(Machine({8: 2.0}).call_at, start=8, max_batch=8)
    assert alone.batch == 8 and len(alone.history) == 1 and alone.gains == () and "max batch 8" in alone.reason
    oom_first = paired_saturating_batch(Machine({1: 0.5}).call_at, rounds=3)
    assert oom_first.batch == 1 and oom_first.gains == () and oom_first.history[0][0] == 1
    with pytest.raises(ValueError, match="start"):
        paired_saturating_batch(machine.call_at, start=4, max_batch=2)
