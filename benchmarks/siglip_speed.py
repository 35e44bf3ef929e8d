"""SigLIP in vidslim vs transformers on the same weights, and ToMe / TempMe on SigLIP: speed-up vs FLOP ratio.

Rows: a SigLIP ViT-B/16 ("siglip-b16-224", random weights, `--layers` vision blocks, the text tower cut to one
layer since it is not timed) on `--frames` random frames of 224 px, batch `--batch`. "transformers" is
`SiglipModel.get_image_features` of `vs.to_transformers(model)` (the same weights) on the B·T frames; "dense",
"tome" and "tempme" are vidslim's `encode_frames` with no reducer, `vs.ToMe(r=--r)` and `vs.TempMe` (r=--r, merging
in the last three blocks, frames joined in groups of 2, 2, then the rest). Every contender runs the MAP head.

Columns: GFLOPs per call (`vidslim.bench.count_flops`, fvcore convention), the FLOP ratio dense / contender, the
median latency with its p10-p90 spread, and the speed-up dense / contender as a ratio of medians and as the median
of per-round ratios (paired), from `vidslim.bench.compare` (interleaved rounds, rotating order, inference mode).
Every speed-up in the table is over vidslim's dense row, so the transformers row is below 1 when transformers is
slower. The line under the table turns it round: vidslim dense against transformers (transformers time / vidslim
time per round, > 1 when vidslim is faster) with its p25-p75 spread and the timer's verdict on the machine's load.
The 1-minute load average before and after is printed: on a shared machine compare ratios, not absolute times.

    .venv/bin/python benchmarks/siglip_speed.py                       # 6 blocks, 8 frames, 7 rounds, 2 threads
    .venv/bin/python benchmarks/siglip_speed.py --layers 12 --rounds 15 --json
    .venv/bin/python benchmarks/siglip_speed.py --layers 12 --rounds 9 --threads 1   # the full B/16, one thread
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import torch

import vidslim as vs
from vidslim.bench.flops import count_flops
from vidslim.bench.timer import Comparison, compare


def load() -> float:
    """The 1-minute load average (how busy the machine is), or nan where unknown."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def tempme_for(layers: int, frames: int, r: int) -> Any:
    """TempMe merging in the last three blocks, frames grouped 2, 2, then whatever is left."""
    rest = frames // 4
    if frames % 4 or layers < 4:
        raise SystemExit("--frames must be a multiple of 4 and --layers at least 4 for the TempMe row")
    return vs.TempMe(r=r, merge_layers=(layers - 4, layers - 3, layers - 2), groups=(2, 2, rest))


def run(layers: int, frames: int, batch: int, r: int, rounds: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = vs.create_model("siglip-b16-224", vision_layers=layers, text_layers=1, num_frames=frames).eval()
    hf = vs.to_transformers(model)
    video = torch.randn(batch, frames, 3, 224, 224)
    pixels = video.flatten(0, 1)
    reducers = {"dense": [], "tome": [vs.ToMe(r=r)], "tempme": [tempme_for(layers, frames, r)]}
    models = {name: vs.from_transformers(hf, reduction=red, num_frames=frames) for name, red in reducers.items()}

    def ours(name: str) -> Any:
        with torch.inference_mode():
            return models[name].encode_frames(video)

    def theirs() -> Any:
        with torch.inference_mode():
            return hf.get_image_features(pixel_values=pixels)

    with torch.inference_mode():
        out = theirs()
        gap = (ours("dense").flatten(0, 1) - (out.pooler_output if hasattr(out, "pooler_output") else out)).abs()
    contenders = {"dense": lambda: ours("dense"), "transformers": theirs, "tome": lambda: ours("tome"),
                  "tempme": lambda: ours("tempme")}
    gflops = {name: count_flops(models[name].encode_frames, video).gflops for name in reducers}
    gflops["transformers"] = count_flops(hf.get_image_features, pixel_values=pixels).gflops
    before = load()
    result = compare(contenders, warmup=1, repeat=rounds, memory=False)
    rows = {}
    for name, timing in result.timings.items():
        rows[name] = {"gflops": gflops[name], "flop_ratio": gflops["dense"] / gflops[name],
                      "median_ms": timing.median * 1e3, "p10_ms": timing.p10 * 1e3, "p90_ms": timing.p90 * 1e3,
                      "speedup": result.speedup(name), "paired_speedup": 1.0 / result.paired_ratio(name)}
    versus = Comparison(result.timings, "transformers", result.load).paired("dense")  # transformers / vidslim
    return {"layers": layers, "frames": frames, "batch": batch, "r": r, "rounds": rounds,
            "threads": torch.get_num_threads(), "max_abs_diff_vs_transformers": float(gap.max()),
            "load_before": before, "load_after": load(), "rows": rows,
            "dense_vs_transformers": {"speedup": versus.speedup, "q25": versus.low, "q75": versus.high,
                                      "label": versus.label(), "verdict": versus.verdict}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=6, help="vision blocks (12 for the full B/16)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--r", type=int, default=16, help="tokens merged per layer (ToMe) / per frame (TempMe)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = run(args.layers, args.frames, args.batch, args.r, args.rounds)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"SigLIP B/16, {args.layers} blocks, {args.frames} frames x batch {args.batch}, {report['threads']} threads, "
          f"{args.rounds} rounds; load {report['load_before']:.1f} -> {report['load_after']:.1f}; "
          f"max |vidslim - transformers| = {report['max_abs_diff_vs_transformers']:.2e}")
    print(f"{'':<13}{'GFLOPs':>8}{'FLOP x':>8}{'median ms':>11}{'p10-p90 ms':>17}{'speed-up':>10}{'paired':>8}")
    for name, row in report["rows"].items():
        spread = f"{row['p10_ms']:.0f}-{row['p90_ms']:.0f}"
        print(f"{name:<13}{row['gflops']:>8.1f}{row['flop_ratio']:>8.2f}{row['median_ms']:>11.0f}{spread:>17}"
              f"{row['speedup']:>10.2f}{row['paired_speedup']:>8.2f}")
    print(f"vidslim dense vs transformers (paired, > 1: vidslim faster): {report['dense_vs_transformers']['label']}")


if __name__ == "__main__":
    main()
