"""Per-frame RLT and TempMe on CLIP ViT-B/16: dense vs tempme vs rlt vs rlt+tempme on the real sample videos.

Per-frame RLT on CLIP is vidslim's extension (`vidslim.tokenize.frame_rlt`; the RLT paper targets video ViTs):
patches that repeat the previous frame's are dropped (tau 0.1, ImageNet units), every frame keeps its CLS.

Rows: CLIP ViT-B/16 ("clip-b16", random weights, the text tower cut to one layer since it is not timed), 12
consecutive frames at the native frame rate from the start of each sample video (`vidslim.io.samples`: bikes,
bigbuckbunny, carphone_pristine), 224 px centre crop, CLIP normalisation, batch `--batch` (the video repeated).
All four models share the same weights; TempMe uses the paper's B/16 settings; every model computes only the CLS
tokens in the last block where the layout allows it (`VisionTransformer.cls_readout`).

`--frames` other than the paper's 12: the paper's groups (2, 2, 3) join the 12 frames into one sequence by the
last merge layer, and so do the groups used at other frame counts: 2 and 2 where they divide, the rest last (8
frames: 2, 2, 2 as the X-CLIP and SigLIP presets; 16: 2, 2, 4; 6: 2, 1, 3). `--set KEY=VALUE` changes any setting
of either method through the reducer registry, checked (`--set tempme.groups=4,2,1`, `--set tau=0.05`).

Columns: the kept fraction of patch tokens (RLT mask, frames after the first and all), GFLOPs per video
(`vidslim.bench.count_flops`, fvcore convention) and the FLOP ratio dense / method, the median latency per batch
and the speed-up dense / method as the median of per-round ratios with their interquartile range
(`vidslim.bench.compare`: interleaved rounds, rotating order, under torch.inference_mode; `PairedRatio.cell`: a
figure whose rounds scatter too much is "~1.4x?", with the timer's verdict and the load under the table). The RLT
timings include computing the mask from the frames.

`--profile` adds a torch.profiler breakdown of rlt+tempme on one video (`--profile-video`): per-layer time and the
time by kind of operator (matmuls, attention, merging and matching, gathers and copies, norms, ...).

    .venv/bin/python benchmarks/clip_rlt_speed.py                   # 2 threads, 10 rounds, batch 1
    .venv/bin/python benchmarks/clip_rlt_speed.py --quick --profile # 3 rounds, plus the profile
    .venv/bin/python benchmarks/clip_rlt_speed.py --threads 1 --batch 4 --videos bikes
    .venv/bin/python benchmarks/clip_rlt_speed.py --quick --videos bikes --frames 8 --set tempme.groups=2,4,1
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
from typing import Any

import torch

import vidslim as vs
from vidslim.bench.flops import count_flops
from vidslim.bench.settings import parse_settings
from vidslim.bench.spread import PairedRatio, footnote
from vidslim.bench.timer import compare
from vidslim.cli.bench import load_input
from vidslim.errors import ConfigError
from vidslim.io.samples import sample_video
from vidslim.models.registry import spec_of_name
from vidslim.reduce.registry import build_reduction
from vidslim.tokenize.frame_rlt import frame_keep_mask

VIDEOS = ("bikes", "bigbuckbunny", "carphone_pristine")
METHODS = ("dense", "tempme", "rlt", "rlt+tempme")
MODEL = "clip-b16"

#: operator-name fragments -> kind, for the profile breakdown (first match wins)
KINDS = (
    ("attention", ("scaled_dot_product", "flash_attention", "_efficient_attention", "softmax", "bmm", "baddbmm")),
    ("matmul (qkv, out, MLP)", ("addmm", "aten::mm", "aten::linear", "aten::matmul")),
    ("merge/match (sort, scatter, index_add)", ("argsort", "sort", "index_add", "scatter", "topk", "max", "cumsum")),
    ("gathers/copies", ("index", "gather", "cat", "copy_", "clone", "contiguous", "nonzero", "masked", "where")),
    ("layer norm", ("layer_norm",)),
    ("activation/elementwise", ("sigmoid", "mul", "add", "div", "sub", "abs", "mean", "norm", "log", "exp")),
    ("conv (patch embed)", ("conv", "convolution")),
)


def tempme_groups(frames: int) -> tuple[int, int, int]:
    """Groups that join all `frames` into one sequence by the last merge layer, as the paper's (2, 2, 3) joins 12:
    2 and 2 where they divide, the rest last (8 -> 2, 2, 2; 16 -> 2, 2, 4; 6 -> 2, 1, 3; 12 -> the paper's)."""
    if frames < 1:
        raise SystemExit(f"--frames {frames}: need at least 1 frame")
    first = 2 if frames % 2 == 0 else 1
    second = 2 if (frames // first) % 2 == 0 else 1
    return first, second, frames // (first * second)


def reductions(frames: int, settings: list[str]) -> dict[str, list[Any]]:
    """Each method's reducers: RLT (tau 0.1) and TempMe (the paper's B/16 settings, groups for `frames`), with the
    `--set KEY=VALUE` settings checked and routed by the reducer registry; a bad one is a one-line exit."""
    try:
        _, options = parse_settings(settings, (), MODEL)
        options = {"tempme.groups": tempme_groups(frames), **options}

        def both() -> list[Any]:  # [RLT, TempMe]: fresh objects per model (TempMe holds per-model tables)
            return build_reduction("rlt+tempme", MODEL, **options)

        return {"dense": [], "tempme": [both()[1]], "rlt": [both()[0]], "rlt+tempme": both()}
    except ConfigError as error:
        raise SystemExit(f"clip_rlt_speed.py: {error}") from None


def build_models(frames: int, settings: list[str]) -> dict[str, Any]:
    """The four models at `frames` on the same random weights (TempMe's temporal tables start at zero)."""
    methods = reductions(frames, settings)
    torch.manual_seed(0)
    try:
        models = {name: vs.create_model(MODEL, text_layers=1, num_frames=frames, reduction=r).eval()
                  for name, r in methods.items()}
    except ConfigError as error:  # a setting that does not fit the model (groups that do not divide the frames)
        raise SystemExit(f"clip_rlt_speed.py: {error}") from None
    state = models["dense"].state_dict()
    for model in models.values():
        model.load_state_dict(state, strict=False)
    return models


def kept_fractions(video: torch.Tensor, tau: float) -> tuple[float, float, list[int]]:
    """(kept fraction of the patches of frames 1.., of all frames, kept patches per frame of video 0)."""
    mask = frame_keep_mask(video, tau, 16)
    per_frame = mask[0].flatten(1).sum(1).tolist()
    return float(mask[:, 1:].float().mean()), float(mask.float().mean()), per_frame


def run_video(name: str, models: dict[str, Any], batch: int, frames: int, rounds: int) -> dict[str, Any]:
    video = load_input(str(sample_video(name)), frames, spec_of_name("clip-b16", num_frames=frames), batch)
    later, overall, per_frame = kept_fractions(video, models["rlt"].reduction[0].tau)
    gflops = {m: count_flops(models[m].encode_video, video).gflops / batch for m in METHODS}

    def call(model: Any) -> Any:
        with torch.inference_mode():
            return model.encode_video(video)

    result = compare({m: (lambda m=m: call(models[m])) for m in METHODS}, warmup=1, repeat=rounds, memory=False)
    load = result.load
    return {
        "video": name,
        "batch": batch,
        "frames": frames,
        "kept_later_frames": later,
        "kept_all_frames": overall,
        "kept_per_frame": per_frame,
        "gflops": gflops,
        "median_ms": {m: result.timings[m].median * 1e3 for m in METHODS},
        "paired": {m: result.paired(m) for m in METHODS},
        "load": (load.before, load.after) if load is not None else (None, None),
    }


def table(rows: list[dict[str, Any]]) -> str:
    frames = rows[0]["frames"] if rows else 12
    lines = [
        f"| video | batch | kept (frames 2-{frames} / all) | method | GFLOPs/video | FLOP ratio | median ms | speed-up "
        "[IQR] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        kept = f"{row['kept_later_frames']:.1%} / {row['kept_all_frames']:.1%}"
        for m in METHODS:
            lines.append(
                f"| {row['video']} | {row['batch']} | {kept} | {m} | {row['gflops'][m]:.1f} | "
                f"{row['gflops']['dense'] / row['gflops'][m]:.2f}x | {row['median_ms'][m]:.0f} | "
                f"{'1.00x' if m == 'dense' else row['paired'][m].cell()} |"
            )
    note = footnote([row["paired"][m] for row in rows for m in METHODS if m != "dense"])
    return "\n".join(lines + ([note] if note else []))


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its paired speedups as dicts (speedup, quartiles, CI, verdict, load)."""
    return {**row, "paired": {m: p.to_dict() for m, p in row["paired"].items() if isinstance(p, PairedRatio)}}


def _kind(op: str) -> str:
    for kind, fragments in KINDS:
        if any(f in op for f in fragments):
            return kind
    return "other"


def profile(models: dict[str, Any], name: str, frames: int, calls: int = 3) -> dict[str, Any]:
    """Where rlt+tempme spends its time on one video: per layer (record_function ranges) and by operator kind."""
    from torch.profiler import ProfilerActivity, record_function
    from torch.profiler import profile as torch_profile

    model = models["rlt+tempme"]
    video = load_input(str(sample_video(name)), frames, spec_of_name("clip-b16", num_frames=frames), 1)
    ranges: list[Any] = []

    def enter(label: str) -> Any:
        def hook(*_: Any) -> None:
            ranges.append(record_function(label))
            ranges[-1].__enter__()

        return hook

    def leave(*_: Any) -> None:
        ranges.pop().__exit__(None, None, None)

    handles = []
    for i, block in enumerate(model.visual.transformer.resblocks):
        handles.append(block.register_forward_pre_hook(enter(f"layer {i:02d}")))
        handles.append(block.register_forward_hook(leave))
    with torch.inference_mode():
        model.encode_video(video)  # warm-up
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(calls):
                with record_function("tokenize (RLT mask + embed)"):
                    tokens_in = model.embed_input(video)
                model.encode_video(video)
    for h in handles:
        h.remove()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    by_kind: dict[str, float] = collections.defaultdict(float)
    for e in events:
        if not e.key.startswith(("layer ", "tokenize")):
            by_kind[_kind(e.key)] += e.self_cpu_time_total
    # the tokenize range was run once more per call than the model's own (inside encode_video): report its time
    layers = {e.key: e.cpu_time_total / calls / 1e3 for e in events if e.key.startswith(("layer ", "tokenize"))}
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:15]
    return {
        "video": name,
        "tokens_per_frame": list(tokens_in.seqlens),
        "ms_per_call": total / calls / 1e3,
        "layer_ms": dict(sorted(layers.items())),
        "kind_share": {k: v / total for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])},
        "top_ops_ms": {e.key: e.self_cpu_time_total / calls / 1e3 for e in top},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--rounds", type=int, default=10, help="timed interleaved rounds (default 10)")
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--batch", type=int, default=1, help="videos per call (default 1)")
    parser.add_argument("--frames", type=int, default=12, help="frames per video (default 12, the paper's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of RLT or TempMe, e.g. tempme.groups=2,2,2 or tau=0.05 (repeatable)")
    parser.add_argument("--videos", nargs="+", default=list(VIDEOS), choices=VIDEOS, help="sample videos")
    parser.add_argument("--profile", action="store_true", help="also profile rlt+tempme on --profile-video")
    parser.add_argument("--profile-video", default="bikes", choices=VIDEOS)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rounds = 3 if args.quick else args.rounds
    models = build_models(args.frames, args.set)
    rows = [run_video(v, models, args.batch, args.frames, rounds) for v in args.videos]
    out: dict[str, Any] = {
        "model": MODEL,
        "frames": args.frames,
        "reducers": repr(list(models["rlt+tempme"].reduction)),
        "threads": torch.get_num_threads(),
        "rounds": rounds,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "rows": [_jsonable(r) for r in rows],
    }
    if args.profile:
        out["profile"] = profile(models, args.profile_video, args.frames)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(
        f"{MODEL}, {args.frames} frames at native fps, {out['threads']} threads, {rounds} rounds, torch "
        f"{out['torch']}; {out['reducers']}"
    )
    print(table(rows))
    for row in rows:
        print(
            f"{row['video']}: kept patches per frame {row['kept_per_frame']}; load {_num(row['load'][0])} -> "
            f"{_num(row['load'][1])}"
        )
    if args.profile:
        p = out["profile"]
        print(
            f"\nprofile of rlt+tempme on {p['video']} ({p['ms_per_call']:.0f} ms per call incl. profiler overhead; "
            f"tokens per frame {p['tokens_per_frame']})"
        )
        print("per layer (ms): " + ", ".join(f"{k}: {v:.1f}" for k, v in p["layer_ms"].items()))
        print("by kind: " + ", ".join(f"{k} {v:.0%}" for k, v in p["kind_share"].items()))
        print("top ops (ms per call): " + ", ".join(f"{k} {v:.1f}" for k, v in p["top_ops_ms"].items()))


def _num(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
