"""The saturating batch search on injected throughputs: where it stops, and why."""

from __future__ import annotations

import pytest
import torch

from vidslim.bench.batching import saturating_batch


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
