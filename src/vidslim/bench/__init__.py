"""Measure cost honestly: FLOPs per module (fvcore convention), latency, throughput, peak memory.

    from vidslim.bench import count_flops, time_fn, compare
    report = count_flops(model, video)             # report.gflops, report.table(depth=2)
    timing = time_fn(lambda: model(video), items_per_call=8)
    result = compare({"dense": dense_fn, "rlt": rlt_fn}, baseline="dense")
    p = result.paired("rlt")                       # per-round speedups: p.speedup, p.low/high, p.verdict, p.label()
    rows = bench_methods("clip-b32", "all", frames=8)   # every method vs dense, interleaved; format_table(rows)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidslim._lazy import lazy_exports

if TYPE_CHECKING:  # the public names: what IDEs read; at run time each module is imported on first use
    from vidslim.bench.batching import BatchChoice as BatchChoice
    from vidslim.bench.batching import paired_saturating_batch as paired_saturating_batch
    from vidslim.bench.batching import saturating_batch as saturating_batch
    from vidslim.bench.end_to_end import Decoded as Decoded
    from vidslim.bench.end_to_end import bottleneck_warnings as bottleneck_warnings
    from vidslim.bench.end_to_end import decode_folder as decode_folder
    from vidslim.bench.flops import FlopCounter as FlopCounter
    from vidslim.bench.flops import FlopReport as FlopReport
    from vidslim.bench.flops import count_flops as count_flops
    from vidslim.bench.overhead import OverheadSplit as OverheadSplit
    from vidslim.bench.overhead import reduction_overhead as reduction_overhead
    from vidslim.bench.row import BenchRow as BenchRow
    from vidslim.bench.spread import MachineLoad as MachineLoad
    from vidslim.bench.spread import PairedRatio as PairedRatio
    from vidslim.bench.suite import Suite as Suite
    from vidslim.bench.suite import bench_methods as bench_methods
    from vidslim.bench.suite import format_table as format_table
    from vidslim.bench.suite import resolve_methods as resolve_methods
    from vidslim.bench.timer import Comparison as Comparison
    from vidslim.bench.timer import Timing as Timing
    from vidslim.bench.timer import compare as compare
    from vidslim.bench.timer import time_fn as time_fn

__getattr__, __dir__, __all__ = lazy_exports(__name__)
