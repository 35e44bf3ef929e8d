"""`vidslim bench --model clip-b16 --method tempme`: what a method costs, layer by layer, and how fast it runs.

    vidslim bench --model clip-b32 --method tempme --batch 4          # table + latency, videos/s, peak memory
    vidslim bench --model clip-b16 --method tome --r 8 --json         # the same as one JSON object
    vidslim bench --model clip-b32 --method dense --no-time           # token and FLOP table only (one pass)
    vidslim bench --model clip-b32 --method tempme --set vision_width=64 --set vision_heads=1   # a narrow model
    vidslim bench --model videomae-b16 --method rlt+tokenprune --video a.mp4 --set tau=0.05 --set keep=0.6
    vidslim bench --model videomae-b16 --method svitt --no-time     # density column: 1/7 of pairs per layer

The model gets random weights (token counts, FLOPs and speed do not depend on them, except RLT's, which depend
on the video) and an input batch of `--batch` videos of `--frames` frames: random, or the clip `--video` (read
at its native frame rate from the start, resized and centre-cropped to the model's size, normalised with the
model's statistics, repeated `--batch` times). A method with RLT needs real video, so it defaults to the
sample video "bikes" (`vidslim.io.samples`); the output names the video used.

One pass under a FLOP counter gives the per-layer table (sequences per
video, tokens per sequence and per video entering attention, tokens leaving the block, GFLOPs per video, in the
fvcore convention); then `--warmup` untimed and `--repeat` timed calls give the median latency per batch,
videos/s at that median and the peak memory of one more call (`vidslim.bench.timer`). Methods come from the
registry in `vidslim.bench.methods` ("dense", "tome", "tempme", "rlt", "random", "tokenprune", "svitt", and any
registered later; "a+b" combines, and a method that does not fit the model is an error naming the ones that do).
`--set KEY=VALUE` sets a method option when some method reads KEY (tau, keep, layers, block, ...; "svitt.seed"
for one method only) and a model config field otherwise. The per-layer table has a density column: the
fraction of (query, key) pairs attention computes in that layer (1.0 where dense; < 1 under SViTT's pattern).

CLIP computes only the CLS tokens in its last block unless `--full-last-layer` is given (then the table shows
the last layer's merge as in spec tempme §1.7).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vidslim.errors import ConfigError


def add_parser(subparsers: Any) -> None:
    """Register `bench` on the `vidslim` command."""
    from vidslim.bench.methods import list_methods
    from vidslim.models.registry import list_models

    methods = list_methods()
    parser = subparsers.add_parser(
        "bench",
        help="per-layer tokens and GFLOPs, latency, throughput and memory of a model with a reduction method",
        description=__doc__.split("\n")[0].split(": ", 1)[1],
        epilog="methods: " + "; ".join(f"{k}: {v}" for k, v in methods.items()),
    )
    parser.add_argument(
        "--model",
        default="clip-b32",
        choices=list_models(),
        metavar="NAME",
        help="named model config (default clip-b32; see vs.list_models())",
    )
    parser.add_argument(
        "--method",
        default="dense",
        metavar="METHOD",
        help=f"reduction method, or several joined by '+' ({', '.join(methods)}; default dense)",
    )
    parser.add_argument("--frames", type=int, default=None, help="frames per video (default: the model's config)")
    parser.add_argument("--batch", type=int, default=1, help="videos per call (default 1)")
    parser.add_argument("--r", type=int, default=None, help="ToMe r per layer / TempMe ImgMe r (default: per model)")
    parser.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="fp32, or bf16 autocast (matching scores and token sizes stay float32)",
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before timing (default 1)")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls; the median is reported (default 5)")
    parser.add_argument("--no-time", action="store_true", help="only the token and FLOP table (one pass)")
    parser.add_argument(
        "--full-last-layer",
        action="store_true",
        help="CLIP: run the last block on every token instead of the CLS tokens only",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a method option (tau, keep, layers, block, random, ...; METHOD.KEY for one method) or a model config "
        "field (e.g. vision_layers=6); repeatable",
    )
    parser.add_argument(
        "--video",
        default=None,
        metavar="PATH",
        help="run on this video instead of random input (default for methods with rlt: the sample video 'bikes')",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the weights and the input")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings -> {key: int | float | bool | str}."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: write KEY=VALUE, e.g. --set vision_layers=6")
        try:
            out[key] = json.loads(text.lower() if text.lower() in ("true", "false") else text)
        except json.JSONDecodeError:
            out[key] = text
    return out


def split_overrides(overrides: dict[str, Any], model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """--set values -> (model config fields, method options): a key some method reads (or METHOD.KEY) is a method
    option, a field of the model's config a model override; anything else is a ConfigError naming both lists."""
    import dataclasses

    from vidslim.bench.methods import method_options
    from vidslim.models.registry import get_config

    fields = {f.name for f in dataclasses.fields(get_config(model))}
    known = method_options()
    config, options = {}, {}
    for key, value in overrides.items():
        if "." in key or key in known:
            options[key] = value
        elif key in fields:
            config[key] = value
        else:
            raise ConfigError(
                f"--set {key}=...: {key!r} is neither a method option ({', '.join(sorted(known))}) nor a field of "
                f"{model!r}'s config ({', '.join(sorted(fields))})"
            )
    return config, options


def load_input(path: str, frames: int, size: int, family: str, batch: int) -> Any:
    """`frames` frames of `path` at its native rate from the start, size x size, normalised, as a batch:
    [B, C, T, H, W] for the video ViT (ImageNet statistics), [B, T, C, H, W] for CLIP (CLIP statistics)."""
    from vidslim.io.probe import probe
    from vidslim.io.transforms import normalize
    from vidslim.io.video import read_video

    info = probe(path)
    clip = read_video(path, num_frames=frames, fps=info.fps, size=size)
    if family == "clip":
        x = normalize(clip.frames, "clip", layout="TCHW")
    else:
        x = normalize(clip.frames, "imagenet", layout="CTHW")
    return x[None].expand(batch, *x.shape).contiguous()


def run(args: argparse.Namespace) -> int:
    """Build the model with the method's reducers, count, time, print."""
    import torch

    from vidslim.bench.methods import build_reduction
    from vidslim.bench.report import layer_report
    from vidslim.bench.timer import time_fn
    from vidslim.models.registry import create_model

    if args.batch < 1 or (args.frames is not None and args.frames < 1) or args.repeat < 1 or args.warmup < 0:
        raise ConfigError("--batch, --frames and --repeat must be >= 1 and --warmup >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    overrides, options = split_overrides(parse_overrides(args.set), args.model)
    if args.r is not None:
        options["r"] = args.r
    reduction = build_reduction(args.method, args.model, **options)
    try:
        device = torch.device(args.device)
    except RuntimeError as error:
        raise ConfigError(f"--device {args.device!r}: {error}; use cpu or cuda") from error
    model = create_model(args.model, reduction=reduction, **overrides).eval().to(device)
    config = model.config
    frames = args.frames or config.num_frames
    source = args.video
    if source is None and "rlt" in (part.strip() for part in args.method.split("+")):
        from vidslim.io.samples import sample_video

        source = str(sample_video("bikes"))
    if source is not None:
        video = load_input(source, frames, config.image_size, model.family, args.batch).to(device)
    elif model.family == "clip":
        side = config.image_size
        video = torch.randn(args.batch, frames, config.in_chans, side, side, device=device)
    else:
        video = torch.randn(args.batch, config.in_chans, frames, config.image_size, config.image_size, device=device)
    if model.family == "clip":
        if args.full_last_layer:
            model.visual.cls_readout = False
        forward = model.encode_video
    else:
        forward = model

    def call() -> Any:
        with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=args.precision == "bf16"):
            return forward(video)

    report = layer_report(call, videos=args.batch, root=model)
    timing = None
    if not args.no_time:
        from tqdm import tqdm

        with tqdm(
            total=args.warmup + args.repeat + 1,
            desc="timing",
            unit="call",
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
            leave=False,
        ) as bar:

            def timed() -> None:
                call()
                bar.update(1)

            timing = time_fn(
                timed, warmup=args.warmup, repeat=args.repeat, items_per_call=args.batch, device=device.type
            )
    result: dict[str, Any] = {
        "model": args.model,
        "method": args.method,
        "frames": frames,
        "batch": args.batch,
        "video": source,
        "gflops_per_video": report.gflops_per_video,
        "videos_per_s": timing.throughput() if timing else None,
        "latency_ms": timing.median * 1e3 if timing else None,
        "peak_memory_mb": (
            timing.peak_memory_bytes / 2**20 if timing and timing.peak_memory_bytes is not None else None
        ),
        "precision": args.precision,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "reduction": [repr(r) for r in reduction],
        "layers": [row.to_dict() for row in report.rows],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    names = ", ".join(result["reduction"]) or "none"
    print(
        f"{args.model}, method {args.method} ({names}), {frames} frames x batch {args.batch}, {args.precision}, "
        f"{device} ({result['threads']} threads)"
    )
    print(f"input: {source if source is not None else 'random (no --video)'}")
    print(report.table())
    print(f"GFLOPs per video: {report.gflops_per_video:.2f}")
    if timing is not None:
        memory = f", peak memory +{result['peak_memory_mb']:.0f} MiB" if result["peak_memory_mb"] is not None else ""
        print(
            f"latency: {timing.median * 1e3:.1f} ms per batch (median of {timing.n}; p10 {timing.p10 * 1e3:.1f}, "
            f"p90 {timing.p90 * 1e3:.1f}), {timing.throughput():.2f} videos/s{memory}"
        )
    return 0
