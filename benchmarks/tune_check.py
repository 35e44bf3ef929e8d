"""Check a card `vidslim tune` wrote, independently: time it against dense on the same clips in a fresh process.

    python benchmarks/tune_check.py --card rlt2x.json --model videomae-b16        # at the card's frames and size
    python benchmarks/tune_check.py --card rlt2x.json --model videomae-b16 --frames 8 --set image_size=112

Reads the card (`vidslim.bench.card_file`), builds the dense model and the carded one on the same weights, reads
every video the card was tuned on (or --video), and times both with the project's timer (`time_until_precise`:
alternating paired rounds, every clip in each call, chunks of --repeat until precise or --max-rounds), then counts
FLOPs per clip. Prints the target, the measured speedup on the wall clock and on the timed thread's CPU seconds
(each with its spread and verdict; --clock says which one decides, auto: CPU with one thread), the GFLOPs, and
whether a speedup target is met within 15% and a GFLOPs target within 5%.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from vidslim.bench.card_file import read_card
from vidslim.bench.precise import time_until_precise
from vidslim.bench.report import layer_report
from vidslim.bench.settings import parse_settings
from vidslim.bench.source import ModelSource, config_fields
from vidslim.bench.tune import parse_target, read_clips
from vidslim.reduce.registry import build_reduction


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--card", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--video", action="append", default=[])
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--max-rounds", type=int, default=21)
    parser.add_argument("--clock", default="auto", choices=("auto", "wall", "cpu"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reduction, meta = read_card(args.card)
    source = ModelSource.open(args.model)
    config, _ = parse_settings(args.set, config_fields(source))
    config = {**(meta.get("config") or {}), **config}  # the card's own frames and size unless given here
    args.frames = args.frames or meta.get("frames")
    if args.frames:
        config["num_frames"] = args.frames
    source = ModelSource.open(args.model, **config)
    torch.manual_seed(0)
    source.base = source.build([])
    dense = source.build([])
    carded = source.build(build_reduction(reduction, source.preset, family=source.family))
    clips = read_clips(args.video or meta.get("videos", []), source, args.frames)

    def run(model: torch.nn.Module) -> None:
        with torch.inference_mode():
            for clip in clips:
                model(clip)

    found = time_until_precise({"dense": lambda: run(dense), "card": lambda: run(carded)}, items=len(clips),
                               repeat=args.repeat, max_rounds=args.max_rounds, clock=args.clock)
    measured = found["card"]
    paired = measured.paired
    gflops = [layer_report(carded, c, root=carded).gflops_per_video for c in clips]
    dense_gflops = [layer_report(dense, c, root=dense).gflops_per_video for c in clips]
    out = {"card": args.card, "target": meta.get("target"), "speedup": paired.label(), **measured.to_dict(),
           "wall": measured.wall.label(), "cpu": None if measured.cpu is None else measured.cpu.label(),
           "gflops": float(np.mean(gflops)), "dense_gflops": float(np.mean(dense_gflops))}
    kind, want = parse_target(meta["target"]) if meta.get("target") else (None, None)
    if kind == "speedup":
        out["within_15pct"] = abs(paired.speedup / want - 1) <= 0.15  # on the deciding clock
        out["wall_within_15pct"] = abs(measured.wall.speedup / want - 1) <= 0.15
    if kind == "gflops":
        out["within_5pct"] = abs(out["gflops"] / want - 1) <= 0.05
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
