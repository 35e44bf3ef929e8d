"""Measure cost honestly: FLOPs per module (fvcore convention), latency, throughput, peak memory.

    from vidslim.bench import count_flops, time_fn, compare
    report = count_flops(model, video)             # report.gflops, report.table(depth=2)
    timing = time_fn(lambda: model(video), items_per_call=8)
    result = compare({"dense": dense_fn, "rlt": rlt_fn}, baseline="dense")
    rows = bench_methods("clip-b32", "all", frames=8)   # every method vs dense, interleaved; format_table(rows)
"""

from __future__ import annotations

from vidslim.bench.batching import BatchChoice, saturating_batch
from vidslim.bench.end_to_end import Decoded, bottleneck_warnings, decode_folder
from vidslim.bench.flops import FlopCounter, FlopReport, count_flops
from vidslim.bench.overhead import OverheadSplit, reduction_overhead
from vidslim.bench.suite import BenchRow, Suite, bench_methods, format_table, resolve_methods
from vidslim.bench.timer import Comparison, Timing, compare, time_fn

__all__ = [
    "BatchChoice", "BenchRow", "Comparison", "Decoded", "FlopCounter", "FlopReport", "OverheadSplit", "Suite",
    "Timing", "bench_methods", "bottleneck_warnings", "compare", "count_flops", "decode_folder", "format_table",
    "reduction_overhead", "resolve_methods", "saturating_batch", "time_fn",
]
