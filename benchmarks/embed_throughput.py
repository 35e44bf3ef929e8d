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
2. batching on a ragged RLT collection (`--batching-videos` 64 px videos in `--batching-mix` shares: still, RLT
   keeps about a tenth of the tokens; the synthetic digit videos, about a quarter; pans, every token), CLIP B/32:
   a budget of `--batch` dense windows' tokens, packed, vs a fixed batch of `--batch` windows, packed (the same
   kernels, only the batching differs), vs a fixed batch of `--batch` windows padded to the longest sequence with
   a key padding mask (what a plain [B, L, D] batch tensor does; `vidslim.jobs.padded`): videos/s, the largest
   batch in tokens and in model seconds (what the budget bounds), and the share of tokens RLT kept per kind;
3. exact vs FAISS (IVF) search latency per query over 10^4 and 10^6 random 512-d vectors;
4. local vs Ray on this machine (2 CPUs; see `ray_section`), the same job, with and without Ray's start-up.
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

# libgomp's idle threads spin around the main thread's parallel regions; on a shared machine that spinning slows
# the local job's model (see `ray_section`), so every job here runs with passive waiting unless told otherwise;
# set before torch starts OpenMP
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np
import torch

import vidslim as vs
from vidslim.bench.spread import PairedRatio
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


def ragged_list(root: Path, count: int, mix: str = "1:1:1", seed: int = 2) -> Path:
    """A list file of `count` videos (64 px, 8 fps, 3 s; upscaled to 224 by the model's spec) in a shuffled order,
    `mix` the shares of three kinds (still:digit:pan): still (one backdrop throughout: RLT keeps the first frame),
    the synthetic digit videos (a glyph moving over a still backdrop) and pans (a texture of 4 px random blocks
    sliding 4 px a frame: every patch changes)."""
    import av

    from vidslim.data.synth import background, write_mp4

    weights = np.array([float(w) for w in mix.split(":")])
    if weights.shape != (3,) or (weights < 0).any() or weights.sum() <= 0:
        raise SystemExit(f"--batching-mix takes three shares still:digit:pan such as 1:1:1, got {mix!r}")
    stills, digits = (int(n) for n in np.floor(weights / weights.sum() * count + 1e-9)[:2])
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    folder = root / "ragged"
    make_synthetic(folder / "digit", num_videos=max(digits, 1), fps=8, seconds=3, size=64, seed=seed)
    paths = sorted(str(p) for p in (folder / "digit").glob("*.mp4"))[:digits]
    rng = np.random.default_rng(seed)
    others = count - digits
    for i in range(others):  # the stills spread evenly among the pans
        if (i * stills) // others != ((i - 1) * stills) // others:
            name, frames = f"still_{i:04d}.mp4", np.repeat(background(64, rng)[None], 24, axis=0)
        else:
            blocks = np.kron(rng.integers(0, 256, (16, 40, 3)), np.ones((4, 4, 1))).astype(np.uint8)  # 64 x 160
            name, frames = f"pan_{i:04d}.mp4", np.stack([blocks[:, 4 * t : 4 * t + 64] for t in range(24)])
        write_mp4(folder / name, frames, 8, codec)
        paths.append(str(folder / name))
    rng.shuffle(paths)
    listing = root / "ragged.txt"
    listing.write_text("\n".join(paths) + "\n")
    return listing


def kept_share(out: Path, grid_tokens: int) -> dict[str, dict[str, float]]:
    """Per kind of video (the file name's prefix): how many, and the mean share of the grid's tokens RLT kept."""
    columns = vs.VideoIndex(out).columns
    kinds: dict[str, list[float]] = {}
    for path, tokens in zip(columns["path"], columns["tokens"], strict=True):
        kind = Path(str(path)).name.split("_")[0].replace("video", "digit")
        kinds.setdefault(kind, []).append(float(tokens) / grid_tokens)
    return {k: {"videos": len(v), "kept": float(np.mean(v))} for k, v in sorted(kinds.items())}


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
    """A token budget of `batch` dense windows' tokens vs fixed batches of `batch` windows, packed and padded, RLT
    on CLIP B/32. The packed fixed batch is the baseline: it runs the same kernels as the budget, so the ratio is
    the batching's alone; the padded one is what a plain batch tensor costs."""
    from vidslim.jobs.padded import PadToLongest

    model = vs.create_model("clip-b32", num_frames=12, reduction=vs.build_reduction("rlt", family="clip")).eval()
    padded = vs.create_model("clip-b32", num_frames=12,
                             reduction=[*vs.build_reduction("rlt", family="clip"), PadToLongest()]).eval()
    padded.load_state_dict(model.state_dict())
    t, h, w = model.input_spec.grid()
    budget = batch * t * h * w
    names = {"fixed": f"fixed batch of {batch}, packed", "padded": f"fixed batch of {batch}, padded to the longest",
             "budget": f"token budget {budget} ({batch} dense windows), packed"}
    last: dict[str, Any] = {}
    contenders = {
        names["fixed"]: job(listing, model, work / "fixed", last, "fixed", workers=1, fixed_batch=True,
                            batch_size=batch),
        names["padded"]: job(listing, padded, work / "padded", last, "padded", workers=1, fixed_batch=True,
                             batch_size=batch),
        names["budget"]: job(listing, model, work / "budget", last, "budget", workers=1, batch_size=batch),
    }
    videos = len(listing.read_text().split())
    result = compare(contenders, baseline=names["fixed"], warmup=0, repeat=repeat, memory=False,
                     items_per_call=videos)
    print(result.table(), flush=True)
    timings = {k: result.timings[n] for k, n in names.items()}
    over_padded = PairedRatio.of(timings["padded"].samples, timings["budget"].samples, load=result.load)
    print(f"token budget over the padded fixed batch: {over_padded.label()}", flush=True)
    return {"model": "clip-b32", "batch": batch, "budget_tokens": budget, "videos": videos,
            "kept_share": kept_share(last["budget"][1], t * h * w), "contenders": names,
            "load": result.load.to_dict() if result.load else None,
            **{k: {"videos_per_s": timings[k].throughput(), "job_s_median": timings[k].median,
                   "job_s_iqr": timings[k].iqr, **job_info(*last[k])} for k in names},
            "budget_over_fixed": paired(result, names["budget"]), "padded_over_fixed": paired(result, names["padded"]),
            "budget_over_padded": {"speedup": over_padded.speedup, "low": over_padded.low, "high": over_padded.high,
                                   "reliable": over_padded.reliable, "label": over_padded.label()}}


#: what each section's table shows (printed above it)
TITLES = {
    "real": "the real sample videos, CLIP B/16, 12 frames, 2 s windows: whole jobs, dense vs RLT vs RLT+TempMe",
    "synthetic": "the synthetic collection, {synthetic_model}, 12 frames, one window per video",
    "batching": "a ragged RLT collection (still, digit and panning videos), CLIP B/32: fixed batches, packed and "
                "padded, vs token-budget batches",
    "search": "exact vs FAISS (IVF) search per query on random vectors",
    "ray": "the same embedding job locally vs on a local Ray instance of 2 CPUs (Ray started before timing)",
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


class _Echo:
    """A Ray Data callable class that does nothing: the warm-up job that starts Ray Data's helper actors."""

    def __call__(self, batch: Any) -> Any:
        return batch


def ray_section(listing: Path, work: Path, repeat: int, count: int) -> dict[str, Any]:
    """The RLT+TempMe CLIP B/32 job on the first `count` synthetic videos, locally and on a local Ray instance of 2
    CPUs, the same checkpoint, the same token budget (4 dense windows) and 2 model threads in total everywhere.
    Each Ray call gets 12 videos, so it runs about the batches the local job runs (the budget holds ~12 RLT
    windows; with fewer videos per call an actor would flush smaller batches, a different workload):
    - local: 1 decode worker + the model on 2 torch threads (`vidslim embed` on 2 CPUs);
    - ray: 2 actors of 1 CPU, each decoding its videos and running the model on 1 thread (data parallel);
    - ray_1actor: 1 actor of 2 CPUs, the model on 2 threads: local's compute shape, so the gap is Ray's own cost.
    Ray Data runs the actors' calls in a worker thread, where libgomp's idle threads do not spin as they do
    around the main thread's parallel regions; on a shared 2-core machine that spinning alone made the local
    model ~2.5x slower, so the script sets OMP_WAIT_POLICY=passive for the whole run (Ray's workers inherit it).
    Ray is started before timing, and an empty warm-up job creates Ray Data's helper actors, as on a cluster that
    is already running; ray.init, that warm-up and ray.shutdown are timed apart and reported as start-up (each
    timed job still starts its own actors and loads the model in them)."""
    import ray
    import ray.data

    from vidslim.scale import embed_on_ray

    subset = work / "ray_videos.txt"
    videos = listing.read_text().split()[:count]
    subset.write_text("\n".join(videos) + "\n")
    model_dir = work / "rlt_tempme_model"
    model = vs.create_model("clip-b32", num_frames=12,
                            reduction=vs.build_reduction("rlt+tempme", model="clip-b32", family="clip"))
    vs.save_model(model, model_dir)
    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    init_s = time.perf_counter() - started
    last: dict[str, Any] = {}
    threads = torch.get_num_threads()

    def on_ray(key: str, actors: int, cpus: float) -> Callable[[], None]:
        def run() -> None:
            shutil.rmtree(work / key, ignore_errors=True)
            last[key] = embed_on_ray(subset, str(model_dir), work / key, actors=actors, cpus_per_actor=cpus,
                                     videos_per_batch=12, batch_size=4, faiss="never")
        return run

    def local() -> None:
        torch.set_num_threads(2)
        try:
            job(subset, str(model_dir), work / "local", last, "local", workers=1, batch_size=4, flops=None)()
        finally:
            torch.set_num_threads(threads)

    started = time.perf_counter()
    ray.data.from_items([{"x": 0}]).map_batches(_Echo, compute=ray.data.ActorPoolStrategy(size=1)).take_all()
    warmup_s = time.perf_counter() - started
    contenders = {"local": local, "ray": on_ray("ray", 2, 1.0), "ray_1actor": on_ray("ray_1actor", 1, 2.0)}
    try:
        result = compare(contenders, baseline="local", warmup=0, repeat=repeat, memory=False, items_per_call=count)
    finally:
        started = time.perf_counter()
        ray.shutdown()
        shutdown_s = time.perf_counter() - started
    print(result.table(), flush=True)
    startup_s = init_s + warmup_s + shutdown_s
    out: dict[str, Any] = {"videos": count, "load": result.load.to_dict() if result.load else None,
                           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                           "ray_init_s": init_s, "ray_data_warmup_s": warmup_s, "ray_shutdown_s": shutdown_s,
                           "note": "ray.init, the warm-up job and ray.shutdown are not in the job times; neither "
                                   "side counts FLOPs"}
    local_s = np.asarray(result.timings["local"].samples)
    for key in ("ray", "ray_1actor"):
        p = paired(result, key)
        ray_s = np.asarray(result.timings[key].samples)
        with_start = np.percentile(local_s / (ray_s + startup_s), [25, 50, 75])
        out[key] = {"videos_per_s": result.timings[key].throughput(), "job_s_median": result.timings[key].median,
                    "vs_local": p, "overhead": 1 / p["speedup"] - 1,
                    "overhead_iqr": [1 / p["high"] - 1, 1 / p["low"] - 1],
                    "overhead_with_startup": 1 / with_start[1] - 1,
                    "overhead_with_startup_iqr": [1 / with_start[2] - 1, 1 / with_start[0] - 1],
                    "timing": last[key].timing}
        t = last[key].timing
        print(f"{key}: model {t['model_s']:.1f} s summed over actors, decode {t['decode_s']:.1f} s, first batch "
              f"done after {t['first_result_s']:.1f} s, slowest actor's model load {t['actor_init_s']:.1f} s "
              f"(last round)", flush=True)
        print(f"{key}: overhead vs local {out[key]['overhead']:+.1%} (IQR {out[key]['overhead_iqr'][0]:+.1%} .. "
              f"{out[key]['overhead_iqr'][1]:+.1%}); with Ray's start-up ({startup_s:.1f} s: init {init_s:.1f}, "
              f"Ray Data warm-up {warmup_s:.1f}, shutdown {shutdown_s:.1f}) {out[key]['overhead_with_startup']:+.1%} "
              f"(IQR {out[key]['overhead_with_startup_iqr'][0]:+.1%} .. "
              f"{out[key]['overhead_with_startup_iqr'][1]:+.1%})", flush=True)
    t = last["local"][0].timing
    print(f"local: model {t['model_s']:.1f} s, decode {t['decode_s']:.1f} s in the worker, waited for it "
          f"{t['decode_wait_s']:.1f} s (last round)", flush=True)
    out["local"] = {"videos_per_s": result.timings["local"].throughput(),
                    "job_s_median": result.timings["local"].median, "timing": last["local"][0].timing}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--synthetic", type=int, default=200, help="synthetic videos (default 200)")
    parser.add_argument("--synthetic-model", default="clip-b32", choices=("clip-b32", "clip-b16"),
                        help="the model of the synthetic collection's throughput section (default clip-b32)")
    parser.add_argument("--window", type=float, default=2.0, help="window seconds on the real videos (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every comparison (default 3)")
    parser.add_argument("--batch", type=int, default=4, help="batching section: windows per fixed batch, and the "
                        "budget in dense windows (default 4)")
    parser.add_argument("--batching-videos", type=int, default=30, help="batching section: videos in the ragged "
                        "collection (default 30)")
    parser.add_argument("--batching-mix", default="1:1:1", help="batching section: shares of still, digit and "
                        "panning videos (default 1:1:1)")
    parser.add_argument("--search-sizes", default="10000,1000000")
    parser.add_argument("--ray-videos", type=int, default=48, help="ray section: the first N synthetic videos "
                        "(default 48)")
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
        synth = synthetic_list(work, args.synthetic) if {"synthetic", "ray"} - skip else None
        sections: dict[str, Callable[[], Any]] = {
            "real": lambda: methods_section(real, work / "real", args.repeat, "clip-b16", args.window),
            "synthetic": lambda: methods_section(synth, work / "synthetic", args.repeat, args.synthetic_model, None),
            "batching": lambda: batching_section(
                ragged_list(work, args.batching_videos, args.batching_mix), work / "batching", args.repeat, args.batch),
            "search": lambda: search_section([int(s) for s in args.search_sizes.split(",")], args.dim),
            "ray": lambda: ray_section(synth, work, args.repeat, min(args.ray_videos, args.synthetic)),
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


if __name__ == "__main__":
    main()
