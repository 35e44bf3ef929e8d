"""Measure cost honestly: FLOPs per module (fvcore convention), latency, throughput, peak memory.

    from vidslim.bench import count_flops, time_fn, compare
    report = count_flops(model, video)             # report.gflops, report.table(depth=2)
    timing = time_fn(lambda: model(video), items_per_call=8)
    result = compare({"dense": dense_fn, "rlt": rlt_fn}, baseline="dense")
"""

from __future__ import annotations

from vidslim.bench.flops import FlopCounter, FlopReport, count_flops
from vidslim.bench.timer import Comparison, Timing, compare, time_fn

__all__ = ["Comparison", "FlopCounter", "FlopReport", "Timing", "compare", "count_flops", "time_fn"]
