"""Every method and combination against dense on the two paper models, as `vidslim bench --method all` runs them.

For CLIP ViT-B/16 (12 frames) and the VideoMAE ViT-B/16 (16 frames), 224 px, random weights, on 'bikes' from the
sample videos (consecutive frames at its native 25 fps, so RLT sees real repetition): one `vidslim.bench.Suite`
per model, every method timed interleaved with dense (`vidslim.bench.compare`), at

- batch 1, fp32, eager: every method that fits the model and every pair acting at different stages;
- a saturating batch (dense's throughput doubling from 1 until it gains < 5 %, capped by `--max-batch`), fp32,
  for a few headline methods;
- batch 1 under bf16 autocast, for the same few.

Columns (`vidslim.bench.suite.BenchRow`): tokens entering attention as a fraction of dense's (mean over layers),
GFLOPs per video (fvcore convention) and their ratio to dense's, the median time per batch, the speedup over
dense (median of the per-round ratios [interquartile range], "~1.4x?" with the timer's verdict under the table when
the rounds scatter too much), "realised" = speedup x FLOP ratio (1.0: wall-clock falls exactly as FLOPs do), and
the reduction's own share of the time (matching, sorting, gathering, mask building: `vidslim.bench.overhead`).
torch.compile rows are left out here (minutes of compilation per method on 2 cores); `vidslim bench --compile`
runs them.

    .venv/bin/python benchmarks/methods_table.py              # ~15 minutes on 2 cores
    .venv/bin/python benchmarks/methods_table.py --quick      # narrow models, seconds (a smoke test)
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

import torch

from vidslim.bench.batching import paired_saturating_batch
from vidslim.bench.spread import load_span, unreliable_note
from vidslim.bench.suite import BenchRow, Suite
from vidslim.cli.bench import load_input
from vidslim.io.samples import sample_videos
from vidslim.models.registry import spec_of_name

#: (model, frames, headline methods for the saturating-batch and bf16 rows)
MODELS = (
    ("clip-b16", 12, ("tome", "tempme", "rlt", "rlt+tempme")),
    ("videomae-b16", 16, ("rlt", "tokenprune", "svitt", "rlt+tokenprune")),
)
QUICK = {
    "clip-b16": {"vision_width": 64, "vision_heads": 2, "vision_mlp_dim": 128, "text_layers": 1, "text_width": 32,
                 "text_heads": 2, "text_mlp_dim": 64, "embed_dim": 32},
    "videomae-b16": {"embed_dim": 64, "num_heads": 2, "mlp_dim": 128},
}


def markdown(rows: Sequence[BenchRow]) -> str:
    """BenchRows as a markdown table."""

    def f(value: float | None, spec: str) -> str:
        return "-" if value is None or not math.isfinite(value) else format(value, spec)

    lines = [
        "| method | batch | precision | tokens | GFLOPs/video | FLOP ratio | ms/batch | speedup [IQR] | "
        "realised [IQR] | reduction % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.error:
            lines.append(f"| {r.method} | {r.batch} | {r.precision} | failed: {r.error} | | | | | | |")
            continue
        lines.append(
            f"| {r.method} | {r.batch} | {r.precision} | {f(r.token_fraction, '.3f')} | {f(r.gflops, '.1f')} | "
            f"{f(r.flop_ratio, '.3f')} | {f(r.time_ms, '.0f')} | {r.speedup_text()} | {r.realised_text()} | "
            f"{f(r.overhead_pct, '.1f')} |"
        )
    loads = [x for r in rows for x in (r.load_before, r.load_after)]
    lines += ["", f"During the timings: {load_span(loads, rows[0].cores)} (1-minute average)."]
    note = unreliable_note([r.verdict for r in rows if r.speedup is not None and not r.reliable], len(rows) - 1,
                           "--repeat")
    if note:
        lines.append(note + ".")
    return "\n".join(lines)


def run_model(model: str, frames: int, headline: Sequence[str], args: argparse.Namespace) -> str:
    overrides: dict[str, Any] = QUICK[model] if args.quick else {}
    spec = spec_of_name(model, **{**overrides, "num_frames": frames, "image_size": 224})
    video = load_input(str(sample_videos()["bikes"]), frames, spec, 1)
    out = [f"### {model}, {frames} frames of 'bikes', 224 px\n"]
    suite = Suite(model, "all", video, frames=frames, overrides=overrides)
    rows = suite.run(batch=1, repeat=args.repeat)
    out.append(f"Batch 1, fp32, eager, every method and combination ({len(rows)} rows):\n")
    out.append(markdown(rows))
    if suite.skipped:
        out.append("\nSkipped: " + "; ".join(f"{name}: {why}" for name, why in suite.skipped.items()))
    few = Suite(model, ["dense", *headline], video, frames=frames, overrides=overrides)
    choice = paired_saturating_batch(few.dense_call, max_batch=args.max_batch, rounds=3)
    out.append(f"\nSaturating batch {choice.describe()}:\n")
    out.append(markdown(few.run(batch=choice.batch, repeat=args.repeat)))
    out.append("\nbf16 autocast, batch 1:\n")
    out.append(markdown(few.run(batch=1, precision="bf16", repeat=args.repeat)))
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="narrow models (a smoke test; times mean little)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds per method (default 3)")
    parser.add_argument("--max-batch", type=int, default=8, help="largest batch the saturation search tries")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, random weights, torch.inference_mode\n")
    for model, frames, headline in MODELS:
        print(run_model(model, frames, headline, args))
        print()


if __name__ == "__main__":
    main()
