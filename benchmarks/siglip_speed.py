"""SigLIP in vidslim vs transformers on the same weights, and ToMe / TempMe on SigLIP: speed-up vs FLOP ratio.

Rows: a SigLIP ViT-B/16 ("siglip-b16-224", random weights, `--layers` vision blocks, the text tower cut to one
layer since it is not timed) on `--frames` random frames of 224 px, batch `--batch`. "transformers" is
`SiglipModel.get_image_features` of `vs.to_transformers(model)` (the same weights) on the B·T frames; "dense",
"tome" and "tempme" are vidslim's `encode_frames` with no reducer, `vs.ToMe(r=--r)` and `vs.TempMe` (r=--r, merging
in the last three blocks, frames joined in groups of 2, 2, then the rest). Every contender runs the MAP head.

Columns: GFLOPs per call (`vidslim.bench.count_flops`, fvcore convention), the FLOP ratio dense / contender, the
median latency with its p10-p90 spread, the speedup dense / contender as the median of per-round ratios with their
interquartile range, from `vidslim.bench.compare` (interleaved rounds, rotating order, inference mode), and the
realised share of the FLOP ratio (speedup / FLOP ratio per round, with the same rounds' spread). A figure whose
rounds scatter too much is printed "~1.4x?" (`PairedRatio.cell`) with the timer's verdict under the table.
Every speedup in the table is over vidslim's dense row, so the transformers row is below 1 when transformers is
slower. The line under the table turns it round: vidslim dense against transformers (transformers time / vidslim
time per round, > 1 when vidslim is faster) with its interquartile range. The 1-minute load average during the
timings is printed: on a shared machine compare ratios, not absolute times.

    .venv/bin/python benchmarks/siglip_speed.py                       # 6 blocks, 8 frames, 7 rounds, 2 threads
    .venv/bin/python benchmarks/siglip_speed.py --layers 12 --rounds 15 --json
    .venv/bin/python benchmarks/siglip_speed.py --layers 12 --rounds 9 --threads 1   # the full B/16, one thread
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch

import vidslim as vs
from vidslim.bench.flops import count_flops
from vidslim.bench.spread import PairedRatio, footnote, load_range
from vidslim.bench.timer import Comparison, compare


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
    result = compare(contenders, warmup=1, repeat=rounds, memory=False)
    rows = {}
    for name, timing in result.timings.items():
        flop_ratio = gflops["dense"] / gflops[name]
        paired = result.paired(name)
        rows[name] = {"gflops": gflops[name], "flop_ratio": flop_ratio,
                      "median_ms": timing.median * 1e3, "p10_ms": timing.p10 * 1e3, "p90_ms": timing.p90 * 1e3,
                      "paired_speedup": paired.speedup, "paired": paired, "realised": paired.scaled(1 / flop_ratio)}
    versus = Comparison(result.timings, "transformers", result.load).paired("dense")  # transformers / vidslim
    return {"layers": layers, "frames": frames, "batch": batch, "r": r, "rounds": rounds,
            "threads": torch.get_num_threads(), "max_abs_diff_vs_transformers": float(gap.max()),
            **(result.load.to_dict() if result.load is not None else {}), "rows": rows,
            "dense_vs_transformers": versus}


def print_table(report: dict[str, Any]) -> None:
    """The fixed-width table, the dense-vs-transformers line, the load and (when a figure is "~x?") the verdict."""
    print(f"SigLIP B/16, {report['layers']} blocks, {report['frames']} frames x batch {report['batch']}, "
          f"{report['threads']} threads, {report['rounds']} rounds; max |vidslim - transformers| = "
          f"{report['max_abs_diff_vs_transformers']:.2e}")
    print(f"{'':<13}{'GFLOPs':>8}{'FLOP x':>8}{'median ms':>11}{'p10-p90 ms':>13}{'speedup [IQR]':>20}"
          f"{'realised [IQR]':>19}")
    for name, row in report["rows"].items():
        spread = f"{row['p10_ms']:.0f}-{row['p90_ms']:.0f}"
        speedup, realised = ("1.00x", "1.00") if name == "dense" else (row["paired"].cell(),
                                                                       row["realised"].cell(unit=""))
        print(f"{name:<13}{row['gflops']:>8.1f}{row['flop_ratio']:>8.2f}{row['median_ms']:>11.0f}{spread:>13}"
              f"{speedup:>20}{realised:>19}")
    versus = report["dense_vs_transformers"]
    print(f"vidslim dense vs transformers (paired, > 1: vidslim faster): {versus.cell()}")
    pairs = [row["paired"] for name, row in report["rows"].items() if name != "dense"] + [versus]
    print(f"during the timings: {load_range(pairs)} (1-minute average)")
    note = footnote(pairs)
    if note:
        print(note)


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
    if args.json:  # every paired speedup as its dict: median, quartiles, CI, verdict, load, rounds
        print(json.dumps(report, indent=2, default=lambda o: o.to_dict() if isinstance(o, PairedRatio) else str(o)))
        return
    print_table(report)


if __name__ == "__main__":
    main()
