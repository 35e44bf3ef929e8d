"""TempMe against vidslim's dense CLIP video encoder: FLOPs, videos/s and the speed-up, on the same random weights.

Rows (12 frames, 224 px, fp32 unless --precision bf16; the vision tower's `encode_video`):
- clip-b32, batch 4: TempMe with the paper's B/32 settings (r 2, merge layers 8-9-10, groups 2-2-3, R_C 70 %,
  R_I 90 %) against the dense model;
- clip-b16, batch 1: TempMe with the paper's B/16 settings (r 10, R_C 60 %, R_I 80 %) against the dense model.

Both models hold the same weights (TempMe's temporal embeddings start at zero and LoRA is not attached, as at
step 0 of fine-tuning or after `merge_lora`). Both compute only the CLS tokens in the last block
(`VisionTransformer.cls_readout`), the readout's one need. FLOPs (fvcore convention) come from one counted pass
each (`vidslim.bench.report`); the FLOP ratio is dense / TempMe. Timing: `vidslim.bench.timer.compare`, one
warm-up round, then `--rounds` rounds calling both in alternating order under torch.inference_mode; the speed-up
is the median over rounds of dense time / TempMe time (paired, so drift on a shared machine hits both alike),
with the interquartile range of the rounds and the timer's verdict (`PairedRatio.label`: "~1.4x? (unreliable:
...)" when the rounds scatter too much); videos/s is the batch over each median. The load average before and after
is printed: on a machine shared with other jobs, read the ratios, not the absolute rates.

The official release's throughput is not measured here, so it is not in the table: it is quoted under it with
where it comes from, never in a column that invites a ratio with this run's figures (`QUOTED`).

    .venv/bin/python benchmarks/tempme_speed.py                       # markdown table
    .venv/bin/python benchmarks/tempme_speed.py --rows clip-b32 --rounds 5 --json
    .venv/bin/python benchmarks/tempme_speed.py --threads 1           # one thread: steadier on a busy machine
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from typing import Any

import torch

import vidslim as vs
from vidslim.bench.report import layer_report
from vidslim.bench.timer import compare
from vidslim.reduce.tempme import TempMe

ROWS = {"clip-b32": 4, "clip-b16": 1}  # model -> batch
QUOTED = (
    "Quoted, not measured by this script: the official TempMe release, timed on another day (2026-11, the task "
    "brief and spec tempme §1.7b; a 2-core CPU of this kind, 12 frames, its own dense path), gave about 2.38 videos/s "
    "with TempMe and 1.64 without on B/32, 0.63 and 0.39 on B/16. Those runs had another load and another process; "
    "do not divide them by the rates above. Timed side by side in one process on the same weights (a separate check "
    "in 2026-12, equal outputs to 4e-8), vidslim's TempMe ran 1.08-1.20x the official code's speed."
)


def run_row(name: str, batch: int, frames: int, rounds: int, precision: str) -> dict[str, Any]:
    torch.manual_seed(0)
    dense = vs.create_model(name, text_layers=1).eval()  # the text tower is not timed: keep it small
    tempme = vs.create_model(name, text_layers=1, reduction=[TempMe.paper(name)]).eval()
    tempme.load_state_dict(dense.state_dict(), strict=False)  # the same weights; TempMe's own tables stay zero
    video = torch.randn(batch, frames, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    bf16 = precision == "bf16"

    def call(model: Any) -> Any:
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            return model.encode_video(video)

    flops_dense = layer_report(lambda: call(dense), root=dense, videos=batch).gflops_per_video
    flops_tempme = layer_report(lambda: call(tempme), root=tempme, videos=batch).gflops_per_video
    diff = (call(dense).float() - call(tempme).float()).norm(dim=-1).max().item()
    result = compare(
        {"dense": lambda: call(dense), "tempme": lambda: call(tempme)},
        warmup=1,
        repeat=rounds,
        items_per_call=batch,
        memory=False,
    )
    flop_ratio = flops_dense / flops_tempme
    paired = result.paired("tempme")
    speedup = paired.speedup
    return {
        "model": name,
        "batch": batch,
        "frames": frames,
        "precision": precision,
        "gflops_dense": flops_dense,
        "gflops_tempme": flops_tempme,
        "flop_ratio": flop_ratio,
        "videos_per_s_dense": result.timings["dense"].throughput(),
        "videos_per_s_tempme": result.timings["tempme"].throughput(),
        "speedup": speedup,
        "speedup_over_flop_ratio": speedup / flop_ratio,
        "paired": paired.to_dict(),
        "speedup_text": paired.label(),
        "rounds": rounds,
        "embedding_gap": diff,  # |dense - TempMe| of the video embeddings: merging changes them, a sanity check
    }


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"CPU: {meta['processor'] or meta['machine']}, {meta['cpus']} cores, {meta['threads']} threads, torch "
        f"{meta['torch']}, 12 frames; speed-up: median of per-round ratios [interquartile range], dense and TempMe "
        "in the same process on the same weights",
        "",
        "| model | batch | prec | GFLOPs dense / TempMe | FLOP ratio | videos/s dense | videos/s TempMe | speed-up | "
        "speed-up / FLOP ratio | load before / after (cores) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['precision']} | {r['gflops_dense']:.2f} / {r['gflops_tempme']:.2f} "
            f"| {r['flop_ratio']:.2f} | {r['videos_per_s_dense']:.2f} | {r['videos_per_s_tempme']:.2f} | "
            f"{r['speedup_text']} | {r['speedup_over_flop_ratio']:.2f} | {_load(r['paired'])} |"
        )
    lines += ["", QUOTED]
    return "\n".join(lines)


def _load(paired: dict[str, Any]) -> str:
    fmt = lambda v: "?" if v is None else f"{v:.1f}"  # noqa: E731
    return f"{fmt(paired.get('load_before'))} / {fmt(paired.get('load_after'))} ({paired.get('cores')})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS), help="which models to run")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timed rounds per row (default 7)")
    parser.add_argument("--frames", type=int, default=12, help="frames per video (default 12; 12 fits 2-2-3)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="fp32 or bf16 autocast")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    meta = {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    rows = [run_row(name, ROWS[name], args.frames, args.rounds, args.precision) for name in args.rows]
    print(json.dumps({"meta": meta, "rows": rows}, indent=2) if args.json else markdown(rows, meta))


if __name__ == "__main__":
    main()
