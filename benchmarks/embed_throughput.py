"""What `vidslim embed` and `vidslim search` cost on this machine, decode included (BENCHMARKS.md, "Embedding").

    PYTHONPATH=src python benchmarks/embed_throughput.py                 # the default sizes (a few minutes on 2 CPUs)
    PYTHONPATH=src python benchmarks/embed_throughput.py --synthetic 300 --repeat 3 --json out.json

1. videos/s of the whole job (decode in a worker process, model, Parquet) for dense, RLT and RLT+TempMe on CLIP
   B/16 (random weights; speed does not depend on them) at 12 frames, 224 px, one window per video, over the
   real sample videos and a synthetic collection;
2. token-budget batching vs a fixed batch on a ragged RLT collection (real and synthetic videos mixed);
3. exact vs FAISS (IVF) search latency per query over 10^4 and 10^6 random 512-d vectors (vidslim's timer);
4. local vs Ray on this machine (2 actors), the same job.
Whole jobs are timed with time.perf_counter, `--repeat` times each, interleaved across methods so a change of
load hits all of them; median and min-max are reported with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import vidslim as vs
from vidslim.bench.timer import time_fn
from vidslim.data.synth import make_synthetic
from vidslim.io.samples import sample_videos
from vidslim.jobs.search import build_ivf, exact_topk


def spread(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "n": len(samples)}


def collection(root: Path, synthetic: int) -> Path:
    """A list file: the real sample videos and `synthetic` synthetic ones (64 px, 8 fps, 3 s; upscaled to 224)."""
    make_synthetic(root / "synth", num_videos=synthetic, fps=8, seconds=3, size=64, seed=1)
    paths = [str(p) for p in sample_videos().values()] + sorted(str(p) for p in (root / "synth").glob("*.mp4"))
    listing = root / "videos.txt"
    listing.write_text("\n".join(paths) + "\n")
    return listing


def embed_once(listing: Path, model: Any, out: Path, **options: Any) -> tuple[float, Any]:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    summary = vs.embed_videos(listing, model, out, faiss="never", **options)
    return time.perf_counter() - started, summary


def methods_section(listing: Path, work: Path, repeat: int, frames: int) -> dict[str, Any]:
    models = {}
    for method in ("dense", "rlt", "rlt+tempme"):
        model = vs.create_model("clip-b16", num_frames=frames)
        reducers = [] if method == "dense" else vs.build_reduction(method, model="clip-b16", family="clip")
        models[method] = model.set_reduction(reducers).eval()
    samples: dict[str, list[float]] = {m: [] for m in models}
    info: dict[str, Any] = {}
    for _ in range(repeat):
        for method, model in models.items():
            seconds, summary = embed_once(listing, model, work / method, workers=1, batch_size=4)
            samples[method].append(summary.embedded / seconds)
            info[method] = {"bottleneck": summary.timing["bottleneck"], "tokens_per_window":
                            summary.timing["tokens"] / max(summary.timing["windows"], 1),
                            "decode_s": summary.timing["decode_s"], "model_s": summary.timing["model_s"],
                            "videos": summary.embedded}
    dense = statistics.median(samples["dense"])
    return {m: {"videos_per_s": spread(s), "speedup": statistics.median(s) / dense, **info[m]}
            for m, s in samples.items()}


def batching_section(listing: Path, work: Path, repeat: int, frames: int) -> dict[str, Any]:
    model = vs.create_model("clip-b16", num_frames=frames, reduction=vs.build_reduction("rlt", family="clip")).eval()
    samples: dict[str, list[float]] = {"token_budget": [], "fixed": []}
    for _ in range(repeat):
        for name, options in (("token_budget", {"batch_size": 4}), ("fixed", {"fixed_batch": True, "batch_size": 4})):
            seconds, summary = embed_once(listing, model, work / name, workers=1, **options)
            samples[name].append(summary.embedded / seconds)
    ratio = statistics.median(samples["token_budget"]) / statistics.median(samples["fixed"])
    return {**{k: {"videos_per_s": spread(v)} for k, v in samples.items()}, "budget_over_fixed": ratio}


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


def ray_section(listing: Path, work: Path, repeat: int, frames: int) -> dict[str, Any]:
    import ray

    from vidslim.scale import embed_on_ray

    model_dir = work / "rlt_tempme_model"
    model = vs.create_model("clip-b16", num_frames=frames,
                            reduction=vs.build_reduction("rlt+tempme", model="clip-b16", family="clip"))
    vs.save_model(model, model_dir)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    samples: dict[str, list[float]] = {"local": [], "ray": []}
    try:
        for _ in range(repeat):
            seconds, summary = embed_once(listing, str(model_dir), work / "local", workers=1, batch_size=4)
            samples["local"].append(summary.embedded / seconds)
            shutil.rmtree(work / "ray", ignore_errors=True)
            started = time.perf_counter()
            summary = embed_on_ray(listing, str(model_dir), work / "ray", actors=2, videos_per_batch=4,
                                   batch_size=4, faiss="never")
            samples["ray"].append(summary.embedded / (time.perf_counter() - started))
    finally:
        ray.shutdown()
    overhead = statistics.median(samples["local"]) / statistics.median(samples["ray"]) - 1
    return {**{k: {"videos_per_s": spread(v)} for k, v in samples.items()}, "ray_overhead": overhead,
            "note": "Ray started before timing (ray.init not included)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--synthetic", type=int, default=12, help="synthetic videos next to the 3 real ones")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--search-sizes", default="10000,1000000")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--skip", default="", help="comma list of sections to skip: methods,batching,search,ray")
    parser.add_argument("--json", default=None, metavar="FILE")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    result: dict[str, Any] = {"threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                              "load_before": os.getloadavg(), "timing": "whole jobs: perf_counter; search: "
                              "vidslim.bench.timer.time_fn"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        listing = collection(work, args.synthetic)
        result["videos"] = len(listing.read_text().split())
        if "methods" not in skip:
            result["methods"] = methods_section(listing, work, args.repeat, args.frames)
            print(json.dumps({"methods": result["methods"]}, indent=1), flush=True)
        if "batching" not in skip:
            result["batching"] = batching_section(listing, work, args.repeat, args.frames)
            print(json.dumps({"batching": result["batching"]}, indent=1), flush=True)
        if "search" not in skip:
            result["search"] = search_section([int(s) for s in args.search_sizes.split(",")], args.dim)
            print(json.dumps({"search": result["search"]}, indent=1), flush=True)
        if "ray" not in skip:
            result["ray"] = ray_section(listing, work, args.repeat, args.frames)
            print(json.dumps({"ray": result["ray"]}, indent=1), flush=True)
    result["load_after"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("videos", "load_before", "load_after")}))


if __name__ == "__main__":
    main()
