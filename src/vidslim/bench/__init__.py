"""Measure cost honestly: FLOPs per module (fvcore convention), latency, throughput, peak memory.

    from vidslim.bench import count_flops, time_fn, compare
    report = count_flops(model, video)             # report.gflops, report.table(depth=2)
    timing = time_fn(lambda: model(video), items_per_call=8)
    result = compare({"dense": dense_fn, "rlt": rlt_fn}, baseline="dense")
    p = result.paired("rlt")                       # per-round speedups: p.speedup, p.low/high, p.verdict, p.label()
    rows = bench_methods("clip-b32", "all", frames=8)   # every method vs dense, interleaved; format_table(rows)
"""

from __future__ import annotations

from vidslim._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "BatchChoice": "vidslim.bench.batching",
    "saturating_batch": "vidslim.bench.batching",
    "Decoded": "vidslim.bench.end_to_end",
    "bottleneck_warnings": "vidslim.bench.end_to_end",
    "decode_folder": "vidslim.bench.end_to_end",
    "FlopCounter": "vidslim.bench.flops",
    "FlopReport": "vidslim.bench.flops",
    "count_flops": "vidslim.bench.flops",
    "OverheadSplit": "vidslim.bench.overhead",
    "reduction_overhead": "vidslim.bench.overhead",
    "BenchRow": "vidslim.bench.row",
    "Suite": "vidslim.bench.suite",
    "bench_methods": "vidslim.bench.suite",
    "format_table": "vidslim.bench.suite",
    "resolve_methods": "vidslim.bench.suite",
    "MachineLoad": "vidslim.bench.spread",
    "PairedRatio": "vidslim.bench.spread",
    "Comparison": "vidslim.bench.timer",
    "Timing": "vidslim.bench.timer",
    "compare": "vidslim.bench.timer",
    "time_fn": "vidslim.bench.timer",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
