"""Where the time goes that FLOPs do not predict, for every method and combination: realised speedup and a profile.

For CLIP ViT-B/16 (12 frames) and the VideoMAE ViT-B/16 (16 frames), 224 px, random weights, on consecutive frames
of a real sample video ('bikes' at its own 25 fps, so RLT sees real repetition), every method `vidslim bench
--method all` runs (`vidslim.bench.suite.Suite`) is timed against dense at batch 1 and at the saturating batch
(dense's throughput doubling from 1 until it gains < 5 %; on one thread that is usually batch 1, and then batch 2
is run as well, so the packed path of unequal lengths is covered).

Timing: interleaved paired rounds (`vidslim.bench.compare` and its `paired` ratios: every round calls every method
once, rotating who goes first). Per round, realised = (dense time / method time) x (method FLOPs / dense FLOPs): 1.0
when wall-clock falls exactly as the FLOPs do. The table gives the median over rounds and the IQR, once from
wall-clock and once from the timed thread's CPU seconds (`time.thread_time`, one thread): on a shared machine the
wall-clock of a call also holds the time other processes ran on its core, and the CPU column does not.

Profile: one extra, untimed call per method under torch.profiler, its self CPU time split into
- gemm: the matrix products the FLOP count is made of (addmm, mm, bmm, convolution);
- attn: the SDPA kernels (their FLOPs are counted too, with attention's quadratic term);
- reduce: everything inside a reducer's range (`vidslim.bench.overhead`: matching, sorting, gathers, masks);
- other: the rest of the model (LayerNorm, activations, residual adds, copies, the packed path's gathers, Python
  dispatch of every op);
and the GEMM rate (GFLOP/s, from the profiler's own FLOP counts) relative to dense's: below 1 where the reduced
matrices are too small to run a GEMM at full speed, which no reduction code can remove. "top ops" lists the largest
non-GEMM, non-attention ops by self time outside reducer ranges (ms). A profiler times ops by wall-clock, so on a
loaded machine these shares also hold other processes' time; the CPU split (`CpuSplit`) times the same parts by the
thread's CPU seconds and says where the time beyond the FLOP-ideal goes (`excess_parts`): the linear layers' lower
rate, attention's, the reducers, the rest of the model, and the FLOP-ideal's own error (attention's share changing).

Each model x batch is printed as soon as it is measured and, with `--json PATH`, saved there at once, so a long run
that is stopped keeps what it measured (`--from-json` renders a partial file like a whole one).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/overhead_profile.py --rounds 3            # ~30 min on 2 cores
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/overhead_profile.py --models videomae-b16:16 --methods rlt,tome
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/overhead_profile.py --models clip-b16:12 --json clip.json
    .venv/bin/python benchmarks/overhead_profile.py --from-json clip.json videomae.json   # markdown of --json runs
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from vidslim.bench import compare
from vidslim.bench.batching import paired_saturating_batch
from vidslim.bench.overhead import split_events
from vidslim.bench.suite import Suite
from vidslim.cli.bench import load_input
from vidslim.io.samples import sample_videos
from vidslim.models.registry import spec_of_name

GEMM_OPS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm", "aten::mkldnn_convolution", "aten::convolution")
ATTN_PREFIX = "aten::_scaled_dot_product"
#: ops whose self time is bookkeeping of a call, not work (their children hold the work)
WRAPPERS = ("aten::linear", "aten::matmul", "aten::scaled_dot_product_attention", "aten::conv2d", "aten::conv3d",
            "aten::_convolution", "aten::layer_norm")


def _inside_reduce(event: Any) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("vidslim.reduce."):
            return True
        parent = parent.cpu_parent
    return False


def profile_call(call: Callable[[], Any]) -> dict[str, Any]:
    """One profiled call: self CPU ms by category, GEMM GFLOPs, and the top ops outside GEMMs, attention and
    reducers."""
    with torch.profiler.profile(with_flops=True) as prof, torch.profiler.record_function("vidslim.bench.call"):
        call()
    events = prof.events()
    split = split_events(events)
    gemm = attn = other = total = 0.0
    gemm_flops = 0.0
    ops: dict[str, float] = {}
    for e in events:
        if e.name.startswith("vidslim.") or e.name.startswith("ProfilerStep"):
            continue
        ms = e.self_cpu_time_total / 1e3
        total += ms
        if e.name in GEMM_OPS:
            gemm += ms
            gemm_flops += float(getattr(e, "flops", 0) or 0)
        elif e.name.startswith(ATTN_PREFIX):
            attn += ms
        elif not _inside_reduce(e):
            other += ms
            ops[e.name] = ops.get(e.name, 0.0) + ms
    reduce = max(total - gemm - attn - other, 0.0)
    top = sorted(((n, ms) for n, ms in ops.items() if n not in WRAPPERS), key=lambda kv: -kv[1])[:3]
    return {
        "total_ms": total,
        "gemm_ms": gemm,
        "attn_ms": attn,
        "reduce_ms": reduce,
        "other_ms": other,
        "gemm_gflops": gemm_flops / 1e9,
        "gemm_rate": gemm_flops / 1e9 / (gemm / 1e3) if gemm > 0 else math.nan,
        "reduce_by_label": split.by_label,
        "top_ops": top,
    }


class CpuSplit:
    """Thread-CPU seconds of one call split into linear layers, attention kernels, reducer ranges and the rest, with
    the linear layers' and attention's FLOPs: a split that holds on a loaded machine (a profiler's times are
    wall-clock, so they also hold the time other processes held the core).

    While active it wraps `torch.nn.functional.linear` (every nn.Linear and the fused qkv projection), the
    attention entry point the blocks call, and the reducer ranges (`reduce_range`), each timed with
    `time.thread_time` (the innermost only, so nothing counts twice)."""

    def __init__(self) -> None:
        self.seconds = {"linear": 0.0, "attn": 0.0, "reduce": 0.0}
        self.flops = {"linear": 0.0, "attn": 0.0}
        self._depth = 0

    def _timed(self, kind: str, fn: Callable[..., Any], flops: Callable[..., float] | None = None
               ) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self._depth:
                return fn(*args, **kwargs)
            self._depth += 1
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[kind] += time.thread_time() - start
                self._depth -= 1
                if flops is not None:
                    self.flops[kind] += flops(*args, **kwargs)

        return wrapper

    def measure(self, call: Callable[[], Any]) -> dict[str, float]:
        """Run `call` once with the wrappers in place: CPU ms per part and GFLOP/s of the linear layers and
        attention (2 FLOPs per multiply-add)."""
        import contextlib

        import torch.nn.functional as F

        import vidslim.models.base as base
        import vidslim.models.blocks as blocks

        def linear_flops(x: torch.Tensor, weight: torch.Tensor, *_: Any, **__: Any) -> float:
            return 2.0 * x.numel() * weight.shape[0]

        def attn_flops(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, seqlens: Sequence[int], *_: Any,
                       **kw: Any) -> float:
            dense = kw.get("pattern") is None
            return 4.0 * q.shape[1] * q.shape[2] * sum(int(n) ** 2 for n in seqlens) if dense else math.nan

        @contextlib.contextmanager
        def timed_range(owner: object, point: str) -> Any:
            if self._depth:
                yield
                return
            self._depth += 1
            start = time.thread_time()
            try:
                yield
            finally:
                self.seconds["reduce"] += time.thread_time() - start
                self._depth -= 1

        saved = (F.linear, blocks.attend, blocks.reduce_range, base.reduce_range)
        F.linear = self._timed("linear", F.linear, linear_flops)
        blocks.attend = self._timed("attn", blocks.attend, attn_flops)
        blocks.reduce_range = base.reduce_range = timed_range
        try:
            start = time.thread_time()
            call()
            total = time.thread_time() - start
        finally:
            F.linear, blocks.attend, blocks.reduce_range, base.reduce_range = saved
        ms = {k: v * 1e3 for k, v in self.seconds.items()}
        rate = {k: self.flops[k] / 1e9 / self.seconds[k] if self.seconds[k] else math.nan for k in self.flops}
        return {
            "cpu_ms": total * 1e3,
            **{f"{k}_cpu_ms": v for k, v in ms.items()},
            "other_cpu_ms": total * 1e3 - sum(ms.values()),
            **{f"{k}_gflop": v / 1e9 for k, v in self.flops.items()},
            **{f"{k}_gflops_s": v for k, v in rate.items()},
        }


def cpu_split(call: Callable[[], Any], repeat: int = 2) -> dict[str, float]:
    """`CpuSplit` of the fastest of `repeat` calls (the least disturbed by other processes)."""
    return min((CpuSplit().measure(call) for _ in range(repeat)), key=lambda r: r["cpu_ms"])


def _quartiles(values: Sequence[float]) -> dict[str, float]:
    q1, median, q3 = np.percentile(np.asarray(values, dtype=float), [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3)}


def run_batch(suite: Suite, batch: int, rounds: int) -> list[dict[str, Any]]:
    """Time every method of `suite` against dense at `batch` (interleaved rounds) and profile one call each."""
    x = suite.batch_input(batch)
    calls = {name: suite.caller(entry.forward, x, "fp32") for name, entry in suite.entries.items() if not entry.error}
    timing = compare(calls, baseline="dense", warmup=1, repeat=rounds, memory=False)
    dense_flops = suite.entries["dense"].gflops
    dense_profile = profile_call(calls["dense"])
    dense_split = cpu_split(calls["dense"])
    rows = []
    for name, call in calls.items():
        entry = suite.entries[name]
        flop_ratio = entry.gflops / dense_flops
        paired = timing.paired(name)
        speedups = np.asarray(paired.ratios)
        cpu = np.asarray(paired.cpu_ratios) if paired.cpu_ratios else np.full(1, math.nan)
        prof = dense_profile if name == "dense" else profile_call(call)
        split = dense_split if name == "dense" else cpu_split(call)
        rows.append({
            "method": name,
            "batch": batch,
            "flop_ratio": flop_ratio,
            "ms": float(np.median(timing.timings[name].samples) * 1e3),
            "cpu_ms": float(np.median(timing.timings[name].cpu_samples) * 1e3) if paired.cpu_ratios else math.nan,
            "speedup": _quartiles(speedups),
            "realised": _quartiles(speedups * flop_ratio),
            "realised_cpu": _quartiles(cpu * flop_ratio),
            "verdict": paired.verdict,
            "timer": "ok" if paired.reliable else (f"spread {paired.spread:.0%}" if paired.n >= 3 else "few rounds"),
            "profile": prof,
            "gemm_rate_vs_dense": prof["gemm_rate"] / dense_profile["gemm_rate"],
            "cpu_split": split,
            "linear_rate_vs_dense": split["linear_gflops_s"] / dense_split["linear_gflops_s"],
            "attn_rate_vs_dense": split["attn_gflops_s"] / dense_split["attn_gflops_s"],
        })
    return rows


def run_model(model: str, frames: int, args: argparse.Namespace,
              done: Callable[[dict[str, Any], dict[str, Any] | None], None]) -> dict[str, Any]:
    """Every method of `model` against dense at each batch of `args.batches`; `done(out, None)` once the batches are
    chosen, then `done(out, block)` as each batch finishes, so a run stopped early keeps what it measured."""
    spec = spec_of_name(model, num_frames=frames, image_size=args.size)
    clip = load_input(str(sample_videos()[args.video]), frames, spec, 1)
    suite = Suite(model, args.methods, clip, frames=frames, overrides={"image_size": args.size})
    out: dict[str, Any] = {"model": model, "frames": frames, "size": args.size, "video": args.video,
                           "skipped": suite.skipped, "batches": []}
    chosen: list[int] = []
    for b in args.batches.split(","):
        if b == "sat":
            choice = paired_saturating_batch(suite.dense_call, max_batch=8, rounds=3)
            out["saturation"] = {"batch": choice.batch, "history": choice.history, "reason": choice.reason}
            chosen.append(choice.batch if choice.batch > 1 else 2)
        else:
            chosen.append(int(b))
    done(out, None)
    for b in dict.fromkeys(chosen):
        block = {"batch": b, "rows": run_batch(suite, b, args.rounds)}
        out["batches"].append(block)
        done(out, block)
    return out


def _cell(q: dict[str, float], spec: str = ".2f") -> str:
    return f"{q['median']:{spec}} ({q['q1']:{spec}}-{q['q3']:{spec}})"


def excess_parts(split: dict[str, float], dense: dict[str, float], flop_ratio: float) -> dict[str, float]:
    """Where a method's CPU time beyond its FLOP-ideal (dense CPU ms x FLOP ratio) goes, in ms; the parts sum to it.

    linear: its linear layers' time beyond their FLOPs at dense's linear rate (smaller matrices run slower);
    attn: the same for attention (nan for a sparse pattern, whose FLOPs are not counted here); reduce: the
    reducers' ranges; other: LayerNorm, activations, residuals, copies beyond dense's per linear FLOP; mix: the
    FLOP-ideal's own error: it prices every FLOP at dense's average, while attention's FLOPs (whose share falls
    quadratically with the tokens) run at another rate than the linear layers'.
    """
    lin_ideal = split["linear_gflop"] / dense["linear_gflops_s"] * 1e3
    attn_ideal = split["attn_gflop"] / dense["attn_gflops_s"] * 1e3
    other_ideal = dense["other_cpu_ms"] * split["linear_gflop"] / dense["linear_gflop"]
    excess = split["cpu_ms"] - dense["cpu_ms"] * flop_ratio
    parts = {
        "linear": split["linear_cpu_ms"] - lin_ideal,
        "attn": split["attn_cpu_ms"] - attn_ideal,
        "reduce": split["reduce_cpu_ms"],
        "other": split["other_cpu_ms"] - other_ideal,
    }
    known = sum(v for v in parts.values() if math.isfinite(v))
    return {"excess": excess, **parts, "mix": excess - known}


def _split_table(rows: list[dict[str, Any]]) -> list[str]:
    """The CPU split of every row and where its time beyond the FLOP-ideal goes (see `excess_parts`)."""
    dense = next((r["cpu_split"] for r in rows if r["method"] == "dense" and "cpu_split" in r), None)
    if dense is None:
        return []
    lines = [
        "",
        "CPU split (thread CPU ms of the faster of 2 untimed calls; GFLOP/s at 2 FLOPs per multiply-add) and where "
        "the time beyond the FLOP-ideal goes (ms; `excess_parts`):",
        "",
        "| method | CPU ms | linear ms (GFLOP/s, x dense) | attention ms (GFLOP/s, x dense) | reducers ms | other ms "
        "| excess over ideal | of it: linear rate | attention | reducers | other | FLOP mix |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        sp = r["cpu_split"]
        ex = excess_parts(sp, dense, r["flop_ratio"])
        lines.append(
            f"| {r['method']} | {sp['cpu_ms']:.0f} | {sp['linear_cpu_ms']:.0f} ({sp['linear_gflops_s']:.0f}, "
            f"{r['linear_rate_vs_dense']:.2f}) | {sp['attn_cpu_ms']:.0f} ({sp['attn_gflops_s']:.0f}, "
            f"{r['attn_rate_vs_dense']:.2f}) | {sp['reduce_cpu_ms']:.1f} | {sp['other_cpu_ms']:.0f} | "
            f"{ex['excess']:+.0f} ({100 * ex['excess'] / sp['cpu_ms']:+.1f} %) | {ex['linear']:+.0f} | "
            f"{ex['attn']:+.0f} | {ex['reduce']:+.1f} | {ex['other']:+.0f} | {ex['mix']:+.0f} |"
        )
    short = []
    for r in rows:
        if r["method"] == "dense" or not r["realised_cpu"]["median"] < 0.95:
            continue
        ex = excess_parts(r["cpu_split"], dense, r["flop_ratio"])
        parts = sorted(((k, v) for k, v in ex.items() if k != "excess" and math.isfinite(v)), key=lambda kv: -kv[1])
        named = ", ".join(f"{k} {v:+.0f} ms" for k, v in parts[:3])
        short.append(f"{r['method']} ({r['realised_cpu']['median']:.2f}: {named})")
    if short:
        lines += ["", "Below 0.95 realised (CPU), with the largest parts of the excess: " + "; ".join(short) + "."]
    return lines


def _header(settings: dict[str, Any]) -> list[str]:
    s = settings
    return [
        f"torch {s['torch']}, {s['threads']} thread(s), fp32, random weights, torch.inference_mode, {s['rounds']} "
        "interleaved rounds; realised = speedup x FLOP ratio per round, median (IQR), from wall-clock and from the "
        "timed thread's CPU seconds (the CPU column does not count the time other processes held the core, so it "
        "holds on a loaded machine). Profile columns: share of one profiled call's self time; GEMM rate "
        "(the profiler's FLOPs / GEMM self time) relative to dense's.",
    ]


def _model_head(m: dict[str, Any]) -> list[str]:
    lines = ["", f"### {m['model']}, {m['frames']} frames of '{m['video']}', {m['size']} px", ""]
    sat = m.get("saturation")
    if sat:
        tried = ", ".join(f"{b}: {r:.2f}" for b, r in sat["history"])
        lines.append(f"Saturating batch {sat['batch']} (dense videos/s by batch: {tried}; {sat['reason']})"
                     + ("; batch 2 is run as well, for the packed path." if sat["batch"] == 1 else ".") + "\n")
    return lines


def _batch_block(block: dict[str, Any]) -> list[str]:
    lines = [
        f"Batch {block['batch']}:",
        "",
        "| method | FLOP ratio | ms | CPU ms | speedup | realised | realised (CPU) | timer | gemm % | attn % "
        "| reduce % | other % | GEMM rate | top other ops (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in block["rows"]:
        p = r["profile"]
        share = {k: 100 * p[f"{k}_ms"] / p["total_ms"] for k in ("gemm", "attn", "reduce", "other")}
        top = ", ".join(f"{n.removeprefix('aten::')} {ms:.1f}" for n, ms in p["top_ops"])
        lines.append(
            f"| {r['method']} | {r['flop_ratio']:.3f} | {r['ms']:.0f} | {r.get('cpu_ms', math.nan):.0f} | "
            f"{_cell(r['speedup'])}x | {_cell(r['realised'])} | {_cell(r['realised_cpu'])} | "
            f"{r.get('timer', '')} | {share['gemm']:.1f} | {share['attn']:.1f} | {share['reduce']:.1f} | "
            f"{share['other']:.1f} | {r['gemm_rate_vs_dense']:.2f} | {top} |"
        )
    lines += _split_table(block["rows"])
    shaky = [r["verdict"] for r in block["rows"] if r.get("verdict", "ok") != "ok" and r["method"] != "dense"]
    return lines + (["", f"Timer (`paired(...).verdict`), e.g.: {shaky[0]}", ""] if shaky else [""])


def _model_tail(m: dict[str, Any]) -> list[str]:
    return ["Skipped: " + "; ".join(f"{k}: {v}" for k, v in m["skipped"].items())] if m["skipped"] else []


def to_markdown(result: dict[str, Any]) -> str:
    """The whole report of a run (or of the part a stopped run saved) as markdown."""
    lines = _header(result["settings"])
    for m in result["models"]:
        lines += _model_head(m)
        for block in m["batches"]:
            lines += _batch_block(block)
        lines += _model_tail(m)
    return "\n".join(lines).rstrip() + "\n"


class Progress:
    """Keeps a run's results as they come: each finished model x batch is printed at once (markdown; to stderr when
    stdout is for the final JSON) and, with a --json path, the results so far are written there (replacing the
    file whole, so a killed run leaves the last complete state)."""

    def __init__(self, settings: dict[str, Any], path: Path | None, stream: TextIO) -> None:
        self.result: dict[str, Any] = {"settings": settings, "models": []}
        self.path, self.stream = path, stream
        self._print(_header(settings))

    def _print(self, lines: list[str]) -> None:
        print("\n".join(lines), file=self.stream, flush=True)

    def _save(self) -> None:
        if self.path is not None:
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(self.result, indent=2, default=str))
            os.replace(tmp, self.path)

    def __call__(self, model: dict[str, Any], block: dict[str, Any] | None) -> None:
        """`run_model`'s callback: the model's heading once its batches are chosen, then each finished batch."""
        if block is None:
            self.result["models"].append(model)
            self._print(_model_head(model))
        else:
            self._print(_batch_block(block))
        self._save()

    def finish(self, model: dict[str, Any]) -> None:
        """A model is done: its closing line (what was skipped)."""
        tail = _model_tail(model)
        if tail:
            self._print(tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["clip-b16:12", "videomae-b16:16"], help="MODEL:FRAMES")
    parser.add_argument("--methods", default="all", help="'all' or a comma list (dense is always added)")
    parser.add_argument("--batches", default="1,sat", help="comma list of batch sizes; 'sat' = the saturating batch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--video", default="bikes")
    parser.add_argument("--size", type=int, default=224, help="frame side in pixels (a smoke test on tiny models: 32)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH",
                        help="JSON of the results: alone, printed at the end instead of markdown; with a PATH, written "
                             "there after every model x batch (a run stopped early keeps what it measured)")
    parser.add_argument("--from-json", nargs="+", metavar="FILE",
                        help="print the markdown of earlier --json outputs (e.g. one per model, run side by side)")
    args = parser.parse_args()
    if args.from_json:
        results = [json.loads(Path(path).read_text()) for path in args.from_json]
        merged = {**results[0], "models": [m for r in results for m in r["models"]]}
        print(to_markdown(merged))
        return
    torch.set_num_threads(args.threads)
    settings = {"rounds": args.rounds, "threads": torch.get_num_threads(), "torch": torch.__version__,
                "machine": platform.machine()}
    json_stdout = args.json == "-"
    progress = Progress(settings, None if args.json in (None, "-") else Path(args.json),
                        sys.stderr if json_stdout else sys.stdout)
    for item in args.models:
        name, _, frames = item.partition(":")
        progress.finish(run_model(name, int(frames or 16), args, progress))
    if json_stdout:
        print(json.dumps(progress.result, indent=2, default=str))


if __name__ == "__main__":
    main()
