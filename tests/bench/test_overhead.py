"""The reduction-overhead split: reducer ranges under the profiler, nothing for dense, no-op labels otherwise."""

from __future__ import annotations

import torch

from vidslim.bench.overhead import CALL_RANGE, split_events
from vidslim.bench.suite import Suite
from vidslim.tokens.protocol import REDUCE_RANGE_PREFIX, reduce_range


def test_labels_are_a_shared_no_op_outside_the_profiler() -> None:
    assert reduce_range("TempMe", "after_attention") is reduce_range("ToMe", "after_mlp")
    with torch.profiler.profile() as prof, reduce_range("TempMe", "after_attention"):
        torch.ones(3).sum()
    assert any(e.name == f"{REDUCE_RANGE_PREFIX}TempMe.after_attention" for e in prof.events())


def test_tempme_has_overhead_and_dense_none() -> None:
    suite = Suite("clip-tiny", "dense,tempme", frames=12, overrides={"vision_layers": 12}, options={"r": 2})
    rows = {row.method: row for row in suite.run(batch=1, warmup=0, repeat=1)}
    dense, tempme = rows["dense"], rows["tempme"]
    assert dense.overhead_pct == 0.0 and dense.overhead_by_label == {}
    assert tempme.overhead_ms is not None and tempme.overhead_ms > 0 and 0 < tempme.overhead_pct < 100
    assert any(label.startswith("vidslim.reduce.TempMe.") for label in tempme.overhead_by_label)


class _Event:
    def __init__(self, name: str, cpu_time_total: float, parent: _Event | None = None) -> None:
        self.name, self.cpu_time_total, self.cpu_parent = name, cpu_time_total, parent


def test_nested_ranges_count_once() -> None:
    call = _Event(CALL_RANGE, 10_000.0)
    outer = _Event("vidslim.reduce.A.after_mlp", 3_000.0, call)
    inner = _Event("vidslim.reduce.B.token_mask", 1_000.0, outer)
    other = _Event("aten::mm", 5_000.0, call)
    split = split_events([call, outer, inner, other])
    assert (split.reduce_ms, split.total_ms, split.percent) == (3.0, 10.0, 30.0)
    assert split.by_label == {"vidslim.reduce.A.after_mlp": 3.0}
