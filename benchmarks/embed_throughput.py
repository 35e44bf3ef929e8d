"""What `vidslim embed` and `vidslim search` cost on this machine, decode included (BENCHMARKS.md, "Embedding").

    PYTHONPATH=src python benchmarks/embed_throughput.py                 # the default sizes (several minutes, 2 CPUs)
    PYTHONPATH=src python benchmarks/embed_throughput.py --synthetic 300 --repeat 3 --skip search,ray --json out.json

1. videos/s of the whole job (decode in a worker process, model, FLOP counting as `vidslim embed` does, Parquet)
   for dense, RLT and RLT+TempMe, on two collections:
   - the real sample videos cut into `--window`-second windows, CLIP B/16 at 12 frames, 224 px;
   - `--synthetic` short synthetic videos (64 px, 3 s at 8 fps, one window each), `--synthetic-model` (CLIP B/32
     by default: B/16 dense needs about 4x longer per video, a few hundred of them take most of an hour here) at
     12 frames, 224 px;
   with each method's FLOP ratio (from the index's gflops column), so the realised share of it shows, and where
   each method's time went (decode in the worker, model, waiting for decoded videos; the bottleneck);
2. token-budget batching vs a fixed batch of the same number of dense windows, on a ragged RLT collection (the
   synthetic videos keep about a quarter of their tokens, the real windows most of theirs): videos/s, and the
   largest batch in tokens and in model seconds, which is what the budget bounds;
3. exact vs FAISS (IVF) search latency per query over 10^4 and 10^6 random 512-d vectors;
4. local vs Ray on this machine (2 actors), the same job.
Jobs are compared with `vidslim.bench.timer.compare` (whole jobs as contenders, interleaved, order rotated every
round) and reported as paired speedups with their spread and verdict; search latencies with `time_fn`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import vidslim as vs
from vidslim.bench.timer import Comparison, compare, time_fn
from vidslim.data.synth import make_synthetic
from vidslim.io.samples import sample_videos
from vidslim.jobs.search import build_ivf, exact_topk

METHODS = ("dense", "rlt", "rlt+tempme")


def real_list(root: Path) -> Path:
    listing = root / "real.txt"
    listing.write_text("\n".join(str(p) for p in sample_videos().values()) + "\n")
    return listing


def synthetic_list(root: Path, count: int) -> Path:
    """A list file of `count` synthetic videos (64 px, 8 fps, 3 s; upscaled to 224 by the model's spec)."""
    make_synthetic(root / "synth", num_videos=count, fps=8, seconds=3, size=64, seed=1)
    listing = root / "synth.txt"
    listing.write_text("\n".join(sorted(str(p) for p in (root / "synth").glob("*.mp4"))) + "\n")
    return listing


def job(listing: Path, model: Any, out: Path, last: dict[str, Any], key: str, **options: Any) -> Callable[[], None]:
    """A whole `vs.embed_videos` run into a fresh `out` (FLOPs counted, as `vidslim embed` does by default)."""

    def run() -> None:
        shutil.rmtree(out, ignore_errors=True)
        last[key] = (vs.embed_videos(listing, model, out, faiss="never", **options), out)

    return run


def paired(result: Comparison, name: str) -> dict[str, Any]:
    p = result.paired(name)
    return {"speedup": p.speedup, "low": p.low, "high": p.high, "reliable": p.reliable, "label": p.label()}


def job_info(summary: Any, out: Path) -> dict[str, Any]:
    timing = summary.timing
    gflops = vs.VideoIndex(out).columns["gflops"]
    return {"videos": summary.embedded, "windows": summary.windows, "gflops": float(np.nansum(gflops)),
            "tokens_per_window": timing["tokens"] / max(timing["windows"], 1), "decode_s": timing["decode_s"],
            "decode_wait_s": timing["decode_wait_s"], "model_s": timing["model_s"], "job_s": summary.seconds,
            "batches": timing["batches"], "batch_tokens_max": timing["batch_tokens_max"],
            "batch_s_max": timing["batch_s_max"], "bottleneck": timing["bottleneck"]}


def methods_section(listing: Path, work: Path, repeat: int, config: str, window: float | None) -> dict[str, Any]:
    last: dict[str, Any] = {}
    contenders = {}
    for method in METHODS:
        model = vs.create_model(config, num_frames=12)
        reducers = [] if method == "dense" else vs.build_reduction(method, model=config, family="clip")
        model.set_reduction(reducers).eval()
        contenders[method] = job(listing, model, work / method, last, method, workers=1, batch_size=4, window=window)
    videos = len(listing.read_text().split())
    result = compare(contenders, baseline="dense", warmup=0, repeat=repeat, memory=False, items_per_call=videos)
    info = {m: job_info(*last[m]) for m in METHODS}
    out: dict[str, Any] = {"model": config, "frames": 12, "window_s": window, "videos": videos,
                           "load": result.load.to_dict() if result.load else None}
    for m in METHODS:
        flop_ratio = info["dense"]["gflops"] / info[m]["gflops"]
        out[m] = {"videos_per_s": result.timings[m].throughput(), "job_s_median": result.timings[m].median,
                  "paired": paired(result, m), "flop_ratio": flop_ratio,
                  "realised": paired(result, m)["speedup"] / flop_ratio, **info[m]}
    print(result.table(), flush=True)
    print(stages_table(out), flush=True)
    return out


def stages_table(section: dict[str, Any]) -> str:
    """Where each method's last job went: the worker's decode seconds, the model's seconds, how long the model
    waited for decoded videos, and which side was the bottleneck; with the FLOP ratio and its realised share."""
    lines = []
    for m in METHODS:
        row = section[m]
        lines.append(f"{m:<11} {row['videos_per_s']:.3f} videos/s; last job {row['job_s']:.1f} s: decode "
                     f"{row['decode_s']:.1f} s in the worker, model {row['model_s']:.1f} s, waited "
                     f"{row['decode_wait_s']:.1f} s for decoding; bottleneck {row['bottleneck']}; "
                     f"{row['tokens_per_window']:.0f} tokens/window; FLOP ratio {row['flop_ratio']:.2f}, "
                     f"realised {row['realised']:.2f}")
    return "\n".join(lines)


def batching_section(listing: Path, work: Path, repeat: int, batch: int) -> dict[str, Any]:
    """Fixed batches of `batch` windows vs a budget of `batch` dense windows' tokens, RLT on CLIP B/32."""
    model = vs.create_model("clip-b32", num_frames=12, reduction=vs.build_reduction("rlt", family="clip")).eval()
    last: dict[str, Any] = {}
    contenders = {
        "fixed": job(listing, model, work / "fixed", last, "fixed", workers=1, fixed_batch=True, batch_size=batch),
        "token_budget": job(listing, model, work / "budget", last, "token_budget", workers=1, batch_size=batch),
    }
    videos = len(listing.read_text().split())
    result = compare(contenders, baseline="fixed", warmup=0, repeat=repeat, memory=False, items_per_call=videos)
    print(result.table(), flush=True)
    t, h, w = model.input_spec.grid()
    return {"model": "clip-b32", "batch": batch, "budget_tokens": batch * t * h * w, "videos": videos,
            "load": result.load.to_dict() if result.load else None,
            **{k: {"videos_per_s": result.timings[k].throughput(), **job_info(*last[k])} for k in contenders},
            "budget_over_fixed": paired(result, "token_budget")}


#: what each section's table shows (printed above it)
TITLES = {
    "real": "the real sample videos, CLIP B/16, 12 frames, 2 s windows: whole jobs, dense vs RLT vs RLT+TempMe",
    "synthetic": "the synthetic collection, {synthetic_model}, 12 frames, one window per video",
    "batching": "a ragged RLT collection: fixed batches vs token-budget batches",
    "search": "exact vs FAISS (IVF) search per query on random vectors",
    "ray": "the same embedding job locally vs on a local Ray instance (Ray started before timing)",
}


def search_table(found: dict[str, Any]) -> str:
    """One line per index size: exact and FAISS ms per query (IQR), FAISS build time and recall@10."""
    lines = []
    for size, row in found.items():
        if isinstance(row, dict):
            lines.append(f"{int(size):>9} rows: exact {row['exact_ms']:.2f} ms (IQR {row['exact_iqr_ms']:.2f}), "
                         f"FAISS {row['faiss_ms']:.2f} ms (IQR {row['faiss_iqr_ms']:.2f}), build "
                         f"{row['faiss_build_s']:.1f} s, recall@10 {row['faiss_recall_at_10']:.2f} (random vectors)")
    return "\n".join(lines)


def search_section(sizes: list[int], dim: int) -> dict[str, Any]:
    out = {}
    rng = np.random.default_rng(0)
    for n in sizes:
        vectors = rng.standard_normal((n, dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        query = vectors[n // 2] + 0.05 * rng.standard_normal(dim, dtype=np.float32)
        query /= np.linalg.norm(query)
        exact = time_fn(lambda v=vectors, q=query: exact_topk(v, q, 10), warmup=2, repeat=20, memory=False)
        started = time.perf_counter()
        index = build_ivf(vectors)
        build_s = time.perf_counter() - started
        approx = time_fn(lambda i=index, q=query: i.search(q[None], 10), warmup=2, repeat=50, memory=False)
        recall = np.mean([len(set(index.search(q[None], 10)[1][0]) & set(exact_topk(vectors, q, 10)[1])) / 10
                          for q in vectors[:: max(1, n // 50)][:50]])
        out[str(n)] = {"exact_ms": exact.median * 1e3, "exact_iqr_ms": exact.iqr * 1e3,
                       "faiss_ms": approx.median * 1e3, "faiss_iqr_ms": approx.iqr * 1e3,
                       "faiss_build_s": build_s, "faiss_recall_at_10": float(recall), "nprobe": index.nprobe,
                       "nlist": index.nlist}
        del vectors, index
    return out


def ray_section(listing: Path, work: Path, repeat: int) -> dict[str, Any]:
    """The RLT+TempMe CLIP B/32 job on the synthetic videos: 1 decode worker + the model locally vs 2 Ray actors."""
    import ray

    from vidslim.scale import embed_on_ray

    model_dir = work / "rlt_tempme_model"
    model = vs.create_model("clip-b32", num_frames=12,
                            reduction=vs.build_reduction("rlt+tempme", model="clip-b32", family="clip"))
    vs.save_model(model, model_dir)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    last: dict[str, Any] = {}

    def on_ray() -> None:
        shutil.rmtree(work / "ray", ignore_errors=True)
        embed_on_ray(listing, str(model_dir), work / "ray", actors=2, videos_per_batch=4, batch_size=4, faiss="never")

    contenders = {"local": job(listing, str(model_dir), work / "local", last, "local", workers=1, batch_size=4,
                               flops=None), "ray": on_ray}
    videos = len(listing.read_text().split())
    try:
        result = compare(contenders, baseline="local", warmup=0, repeat=repeat, memory=False, items_per_call=videos)
    finally:
        ray.shutdown()
    print(result.table(), flush=True)
    ray_vs_local = paired(result, "ray")
    return {**{k: {"videos_per_s": result.timings[k].throughput()} for k in contenders}, "ray_vs_local": ray_vs_local,
            "ray_overhead": 1 / ray_vs_local["speedup"] - 1, "load": result.load.to_dict() if result.load else None,
            "note": "Ray started before timing (ray.init not included); neither side counts FLOPs"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--synthetic", type=int, default=200, help="synthetic videos (default 200)")
    parser.add_argument("--synthetic-model", default="clip-b32", choices=("clip-b32", "clip-b16"),
                        help="the model of the synthetic collection's throughput section (default clip-b32)")
    parser.add_argument("--window", type=float, default=2.0, help="window seconds on the real videos (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every comparison (default 3)")
    parser.add_argument("--batch", type=int, default=4, help="batching section: windows per fixed batch, and the "
                        "budget in dense windows (default 4)")
    parser.add_argument("--search-sizes", default="10000,1000000")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--skip", default="", help="comma list of sections to skip: "
                        "real,synthetic,batching,search,ray")
    parser.add_argument("--json", default=None, metavar="FILE")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    result: dict[str, Any] = {"threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                              "load_before": os.getloadavg(), "timing": "jobs: vidslim.bench.timer.compare; "
                              "search: vidslim.bench.timer.time_fn", "started": time.strftime("%Y-%m-%d %H:%M")}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        real = real_list(work)
        synth = synthetic_list(work, args.synthetic) if {"synthetic", "batching", "ray"} - skip else None
        sections: dict[str, Callable[[], Any]] = {
            "real": lambda: methods_section(real, work / "real", args.repeat, "clip-b16", args.window),
            "synthetic": lambda: methods_section(synth, work / "synthetic", args.repeat, args.synthetic_model, None),
            "batching": lambda: batching_section(
                _mixed(work, synth, real), work / "batching", args.repeat, args.batch),
            "search": lambda: search_section([int(s) for s in args.search_sizes.split(",")], args.dim),
            "ray": lambda: ray_section(synth, work, args.repeat),
        }
        for name, run in sections.items():
            if name in skip:
                continue
            title = TITLES[name].format(synthetic_model=args.synthetic_model.replace("clip-b", "CLIP B/"))
            print(f"\n[{name}] {title}", flush=True)
            started = time.perf_counter()
            result[name] = run()
            if name == "search":
                print(search_table(result[name]), flush=True)
            result[name]["section_s"] = time.perf_counter() - started
            print(json.dumps({name: result[name]}, indent=1), file=sys.stderr, flush=True)  # details; --json keeps them
    result["load_after"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("load_before", "load_after")}), file=sys.stderr)


def _mixed(work: Path, synth: Path | None, real: Path) -> Path:
    """The ragged collection: the synthetic videos with the real ones spread among them."""
    paths = synth.read_text().split() if synth else []
    for k, path in enumerate(real.read_text().split()):
        paths.insert((k + 1) * len(paths) // 4, path)
    listing = work / "mixed.txt"
    listing.write_text("\n".join(paths) + "\n")
    return listing


if __name__ == "__main__":
    main()
