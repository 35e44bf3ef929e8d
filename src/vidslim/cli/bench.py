"""`vidslim bench --model clip-b16 --method tempme`: what a method costs, layer by layer, and how fast it runs.

    vidslim bench --model clip-b32 --method tempme --batch 4          # table + latency, videos/s, peak memory
    vidslim bench --model clip-b16 --method tome --r 8 --json         # the same as one JSON object
    vidslim bench --model clip-b32 --method dense --no-time           # token and FLOP table only (one pass)
    vidslim bench --model clip-b32 --method tempme --set vision_width=64 --set vision_heads=1   # a narrow model
    vidslim bench --model videomae-b16 --method rlt+tokenprune --video a.mp4 --set tau=0.05 --set keep=0.6
    vidslim bench --model videomae-b16 --method svitt --no-time     # density column: 1/7 of pairs per layer
    vidslim bench --model runs/clip-msrvtt --method tempme --frames 8 --set tempme.groups=2,2,2   # a checkpoint
    vidslim bench --model videomae-b16 --card rlt-2x.json           # a card `vidslim tune` wrote, against dense
                                                                    # (at the frames and size it was tuned at)

`--model` is a registered name (random weights) or anything `vidslim.load_model` reads: a folder, a checkpoint
file, a model in the local Hugging Face cache by id (its own weights; presets such as TempMe's paper settings
come from the registered model of the same architecture).

A registered model gets random weights (token counts, FLOPs and speed do not depend on them, except RLT's, which depend
on the video) and an input batch of `--batch` videos of `--frames` frames: random, or the clip `--video` (read
at its native frame rate from the start, resized and centre-cropped to the model's size, normalised with the
model's statistics, repeated `--batch` times). A method with RLT needs real video, so it defaults to the
sample video "bikes" (`vidslim.io.samples`); the output names the video used.

One pass under a FLOP counter gives the per-layer table (sequences per
video, tokens per sequence and per video entering attention, tokens leaving the block, GFLOPs per video, in the
fvcore convention); then `--warmup` untimed and `--repeat` timed calls give the median latency per batch,
videos/s at that median and the peak memory of one more call (`vidslim.bench.timer`). Methods come from the
reducer registry in `vidslim.reduce.registry` ("dense", "tome", "tempme", "rlt", "random", "tokenprune", "svitt",
and any registered later; "a+b" combines, and a method that does not fit the model is an error naming the ones
that do). `--set KEY=VALUE` sets a field of the model's config when it is one (vision_layers, num_frames, ...),
and otherwise a setting of every part of the method that takes KEY (tau, keep, layers, block, ...;
"tempme.groups=2,2,3" or "svitt.seed=1" for one part only): any constructor argument of a reducer, checked against
the type of its default (`vidslim.bench.settings`); a setting no part takes, or a value of the wrong kind, is an
error.

Times come from `vidslim.bench.timer`: with several methods (or `--card`), every method and dense run in
interleaved rounds and each speedup is the median of the per-round ratios, with its interquartile range, the
machine's load and a verdict; a speedup whose rounds scatter too much is printed as "~1.4x?" and flagged
unreliable, never as a plain figure. The per-layer table has a density column: the
fraction of (query, key) pairs attention computes in that layer (1.0 where dense; < 1 under SViTT's pattern).

CLIP computes only the CLS tokens in its last block unless `--full-last-layer` is given (then the table shows
the last layer's merge as in spec tempme §1.7).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vidslim.cli.options import add_device_option, add_threads_option, set_timing_threads
from vidslim.errors import ConfigError

PRECISIONS = ("fp32", "bf16")


def add_parser(subparsers: Any) -> None:
    """Register `bench` on the `vidslim` command."""
    from vidslim.models.registry import list_models
    from vidslim.reduce.registry import summaries

    methods = summaries()
    parser = subparsers.add_parser(
        "bench",
        help="per-layer tokens and GFLOPs, latency, throughput and memory of a model with a reduction method",
        description=__doc__.split("\n")[0].split(": ", 1)[1],
        epilog="methods: " + "; ".join(f"{k}: {v}" for k, v in methods.items()),
    )
    parser.add_argument(
        "--model",
        default="clip-b32",
        metavar="NAME|PATH",
        help=f"a named model config (default clip-b32; {', '.join(list_models())}) or a checkpoint folder, file or "
        "cached hub id that vs.load_model reads",
    )
    parser.add_argument("--card", default=None, metavar="FILE",
                        help="a reduction card (from `vidslim tune`), benched against dense as the row 'card'")
    parser.add_argument(
        "--method",
        default="dense",
        metavar="METHOD",
        help=f"reduction method, or several joined by '+' ({', '.join(methods)}; default dense); 'all' or a comma "
        "list (dense,tempme,tempme+svitt) prints one comparison table, dense first",
    )
    parser.add_argument("--frames", type=int, default=None, help="frames per video (default: the model's config)")
    parser.add_argument(
        "--batch",
        default="1",
        metavar="N[,sat]",
        help="videos per call (default 1); with several methods also a comma list, and 'sat': double from 1 until "
        "dense throughput gains < 5%% (--max-batch caps it)",
    )
    parser.add_argument("--max-batch", type=int, default=64, help="largest batch 'sat' tries (default 64)")
    parser.add_argument("--r", type=int, default=None, help="ToMe r per layer / TempMe ImgMe r (default: per model)")
    parser.add_argument(
        "--precision",
        default="fp32",
        metavar="fp32|bf16",
        help="fp32, or bf16 autocast (matching scores and token sizes stay float32); 'fp32,bf16' runs both",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time torch.compile'd models (rows 'compiled'; first-call seconds reported apart; a model that "
        "fails to compile gets a note in its row)",
    )
    parser.add_argument(
        "--end-to-end",
        default=None,
        metavar="VIDEO_DIR",
        help="decode the videos in this folder at the model's frames and size, time decoding per video next to the "
        "model, and warn when decoding is the bottleneck",
    )
    parser.add_argument(
        "--no-overhead", action="store_true", help="skip the profiled pass that measures the reduction's own time"
    )
    add_device_option(parser)
    add_threads_option(parser, timed=True)
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


def split_settings(items: list[str], model: str) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """--set strings -> (model config fields, method settings, the opened model): each key and value checked
    (`vidslim.bench.settings.parse_settings`); the model is reopened with the config fields applied."""
    from vidslim.bench.settings import parse_settings
    from vidslim.bench.source import ModelSource, config_fields

    source = ModelSource.open(model)
    config, options = parse_settings(items, config_fields(source), repr(model))
    if config:
        source = ModelSource.open(model, **config)
    return config, options, source


def load_input(path: str, frames: int, spec: Any, batch: int) -> Any:
    """`frames` frames of `path` at its native rate from the start, prepared as the model takes them (its input
    spec: size, statistics, layout), repeated into a batch of `batch`."""
    x = spec.prepare(read_native(path, frames, spec.image_size))
    return x.expand(batch, *x.shape[1:]).contiguous()


def read_native(path: str | Path, frames: int, size: int) -> Any:
    """`frames` consecutive frames of `path` at its own frame rate from the start, short side `size`, centre
    crop: uint8 [T, H, W, 3] (the input of every timed row: RLT needs real repetition)."""
    from vidslim.io.probe import probe
    from vidslim.io.video import read_video

    return read_video(path, num_frames=frames, fps=probe(path).fps or 25.0, size=size).frames


def suite_mode(args: argparse.Namespace) -> bool:
    """Whether the arguments ask for the comparison table (`vidslim.bench.suite`) rather than one method."""
    return (
        args.method.strip() == "all"
        or "," in args.method
        or not args.batch.isdigit()
        or "," in args.precision
        or args.compile
        or args.end_to_end is not None
        or args.card is not None
    )


def run(args: argparse.Namespace) -> int:
    """Build the model with the method's reducers, count, time, print."""
    import torch

    from vidslim.bench.report import layer_report
    from vidslim.bench.suite import build_method
    from vidslim.bench.timer import time_fn

    set_timing_threads(args.threads, "bench", timing=not args.no_time)
    if suite_mode(args):
        return run_suite(args)
    if args.precision not in PRECISIONS:
        raise ConfigError(f"--precision {args.precision!r}: use fp32 or bf16 (or fp32,bf16 with several methods)")
    if not args.batch.isdigit() or (args.frames is not None and args.frames < 1) or args.repeat < 1 or args.warmup < 0:
        raise ConfigError("--batch, --frames and --repeat must be >= 1 and --warmup >= 0")
    args.batch = int(args.batch)
    if args.batch < 1:
        raise ConfigError("--batch, --frames and --repeat must be >= 1 and --warmup >= 0")
    torch.manual_seed(args.seed)
    overrides, options, model_source = split_settings(args.set, args.model)
    if args.frames is not None and args.frames != model_source.config.num_frames:
        from vidslim.bench.source import ModelSource

        overrides.setdefault("num_frames", args.frames)  # frame schedules (TempMe's groups) read the config
        model_source = ModelSource.open(args.model, **overrides)
    if args.r is not None:
        options["r"] = args.r
    reduction = build_method(args.method, model_source, **options)
    try:
        device = torch.device(args.device)
    except RuntimeError as error:
        raise ConfigError(f"--device {args.device!r}: {error}; use cpu or cuda") from error
    torch.manual_seed(args.seed)
    model = model_source.build(reduction).to(device)
    config = model.config
    frames = args.frames or config.num_frames
    source = args.video
    if source is None and "rlt" in (part.strip() for part in args.method.split("+")):
        from vidslim.io.samples import sample_video

        source = str(sample_video("bikes"))
    spec = model.input_spec
    if source is not None:
        video = load_input(source, frames, spec, args.batch).to(device)
    else:
        video = spec.random(args.batch, frames, device=device)
    if args.full_last_layer and hasattr(model, "visual"):  # CLIP's last block on every token, not only the CLS
        model.visual.cls_readout = False
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
        "latency_q25_ms": timing._q(25) * 1e3 if timing else None,
        "latency_q75_ms": timing._q(75) * 1e3 if timing else None,
        "cpu_share": timing.cpu_share if timing else None,
        **(timing.load.to_dict() if timing and timing.load else {}),
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
        load = f"; {timing.load.describe()}" if timing.load is not None else ""
        print(
            f"latency: {timing.median * 1e3:.1f} ms per batch (median of {timing.n}; IQR "
            f"{result['latency_q25_ms']:.1f}-{result['latency_q75_ms']:.1f}), {timing.throughput():.2f} videos/s"
            f"{memory}{load}; for a speedup give dense too: --method dense,{args.method}"
        )
    return 0


# ------------------------------------------------------------------------------------------------- the suite
def parse_batches(text: str) -> list[int | str]:
    """'1,sat' -> [1, 'sat']: positive integers and 'sat' (the saturating batch)."""
    out: list[int | str] = []
    for part in (p.strip() for p in text.split(",")):
        if part == "sat":
            out.append(part)
        elif part.isdigit() and int(part) >= 1:
            out.append(int(part))
        else:
            raise ConfigError(f"--batch {text!r}: give positive integers and 'sat' joined by ',', e.g. --batch 1,sat")
    return out


def parse_precisions(text: str) -> list[str]:
    """'fp32,bf16' -> ['fp32', 'bf16'] (each checked)."""
    out = [p.strip() for p in text.split(",")]
    bad = [p for p in out if p not in PRECISIONS]
    if bad or not out:
        raise ConfigError(f"--precision {text!r}: use fp32, bf16 or fp32,bf16")
    return list(dict.fromkeys(out))


def suite_input(args: argparse.Namespace, overrides: dict[str, Any], options: dict[str, Any]) -> tuple[Any, str, Any]:
    """The suite's input: (clips or None for random, what to print as the input, the decoded videos or None).
    --end-to-end decodes the folder; --video, or a method with rlt, reads one clip as the single-method path does."""
    from vidslim.bench.source import ModelSource
    from vidslim.bench.suite import resolve_methods

    source = ModelSource.open(args.model, **overrides)
    spec = source.spec
    frames = args.frames or spec.num_frames
    if args.end_to_end is not None:
        from vidslim.bench.end_to_end import decode_folder

        decoded = decode_folder(args.end_to_end, frames, spec)
        return decoded.clips, f"{len(decoded.paths)} videos decoded from {args.end_to_end}", decoded
    methods = resolve_methods(args.method, source, **options)
    if args.card is not None:
        from vidslim.bench.card_file import read_card

        methods.append("+".join(next(iter(part)) if isinstance(part, dict) else str(part)
                                for part in read_card(args.card)[0]))
    video_path = args.video
    if video_path is None and any("rlt" in m.split("+") for m in methods):
        from vidslim.io.samples import sample_video

        video_path = str(sample_video("bikes"))
    if video_path is None:
        return None, "random (no --video)", None
    return load_input(video_path, frames, spec, 1), video_path, None


def progress_bar(total: int, desc: str, disable: bool = False) -> Any:
    """A tqdm bar on stderr (shown only on a terminal) counting timed rounds or calls."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="round", file=sys.stderr, leave=False,
                disable=disable or not sys.stderr.isatty())


#: what each stage of `Suite`'s steps is called on its progress bar
STEP_LABELS = {"count": "building and counting methods", "profile": "profiling the reducers"}


class StepBars:
    """`Suite`'s steps(stage, done, total) as a progress bar per stage on stderr (on a terminal only): building and
    counting every method, and profiling the reducers after the timed rounds, are minutes of work on big models."""

    def __init__(self, disable: bool = False) -> None:
        self.disable, self.stage, self.bar = disable, None, None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.disable or not sys.stderr.isatty():
            return
        if stage != self.stage:
            self.close()
            self.stage, self.bar = stage, progress_bar(total, STEP_LABELS.get(stage, stage))
            self.bar.unit = "step"
        self.bar.total = total
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.stage, self.bar = None, None


def card_defaults(args: argparse.Namespace, meta: dict[str, Any]) -> str:
    """Bench a card as `vidslim tune` measured it: its frames and model config fields (image_size, ...) unless
    --frames or --set give others; returns what was taken from the card ("" when nothing)."""
    taken = []
    if args.frames is None and isinstance(meta.get("frames"), int):
        args.frames = meta["frames"]
        taken.append(f"{args.frames} frames")
    given = {item.partition("=")[0].strip() for item in args.set}
    for key, value in (meta.get("config") or {}).items():
        if key not in given and key != "num_frames" and isinstance(value, (int, float, str)):
            args.set.insert(0, f"{key}={value}")
            taken.append(f"{key}={value}")
    return f"tuned for {meta.get('target', '?')} at {', '.join(taken)}, as the card says" if taken else ""


def run_suite(args: argparse.Namespace) -> int:
    """Every requested method at every batch, precision and mode: one table (or --json), dense first in each."""
    from functools import partial

    import torch

    from vidslim.bench.batching import paired_saturating_batch
    from vidslim.bench.end_to_end import bottleneck_warnings
    from vidslim.bench.suite import Suite, format_table, shared_settings, table_legend

    batches, precisions = parse_batches(args.batch), parse_precisions(args.precision)
    if (args.frames is not None and args.frames < 1) or args.repeat < 1 or args.warmup < 0 or args.max_batch < 1:
        raise ConfigError("--frames, --repeat and --max-batch must be >= 1 and --warmup >= 0")
    if args.no_time and "sat" in batches:
        raise ConfigError("--batch sat finds the batch by timing dense; with --no-time give a number, e.g. --batch 4")
    torch.manual_seed(args.seed)
    cards, tuned_at = {}, ""
    if args.card is not None:
        from vidslim.bench.card_file import read_card

        cards["card"], meta = read_card(args.card)
        tuned_at = card_defaults(args, meta)
    overrides, options, model_source = split_settings(args.set, args.model)
    if args.r is not None:
        options["r"] = args.r
    video, source, decoded = suite_input(args, overrides, options)
    methods = args.method if args.card is None or args.method.strip() != "dense" else "dense"
    steps = StepBars()
    suite = Suite(
        model_source, methods, video, frames=args.frames, overrides=overrides, options=options, device=args.device,
        seed=args.seed, full_last_layer=args.full_last_layer, cards=cards, steps=steps,
    )  # fmt: skip
    rows, choices = [], []
    for precision in precisions:
        for batch in batches:
            if batch == "sat":
                choice = paired_saturating_batch(partial(suite.dense_call, precision=precision), rounds=args.repeat,
                                                 max_batch=args.max_batch, device=suite.device.type)
                choices.append({"precision": precision, **choice.to_dict(), "text": choice.describe()})
                batch = choice.batch
            for compiled in (False, True) if args.compile else (False,):
                with progress_bar(args.warmup + args.repeat, f"timing {len(suite.methods)} methods, batch {batch}",
                                  disable=args.no_time) as bar:
                    rows += suite.run(int(batch), precision, compiled, args.warmup, args.repeat,
                                      not args.no_overhead, time=not args.no_time, progress=bar.update)
    steps.close()
    warnings: list[str] = []
    if decoded is not None:
        for row in rows:
            row.decode_ms_per_video = decoded.ms_per_video
        warnings = bottleneck_warnings(rows, decoded.ms_per_video)
    for line in warnings:
        print(line, file=sys.stderr)
    result = {
        "model": args.model, "methods": suite.methods, "frames": suite.frames, "video": source,
        "device": str(suite.device), "threads": torch.get_num_threads(), "skipped": suite.skipped,
        "batch_choices": choices, "warnings": warnings, "rows": [row.to_dict() for row in rows],
        "decode": None if decoded is None else {
            "videos": [str(p) for p in decoded.paths], "ms_per_video": decoded.ms_per_video,
            "seconds": list(decoded.seconds), "failed": decoded.failed,
        },
    }  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    timed = "tokens and FLOPs only (--no-time)" if args.no_time else (
        f"median of {args.repeat} interleaved rounds; speedup vs dense of the same batch, precision and mode: the "
        "median of per-round ratios [interquartile range]")
    print(f"{args.model}, {suite.frames} frames, {shared_settings(rows)}{suite.device} ({result['threads']} threads), "
          f"{timed}")
    print(f"input: {source}")
    if tuned_at:
        print(f"card: {args.card} ({tuned_at})")
    print(format_table(rows))
    for choice in choices:
        print(f"sat batch ({choice['precision']}, dense): {choice['text']}")
    if decoded is not None:
        print(f"decode: {decoded.ms_per_video:.1f} ms per video (median of {len(decoded.seconds)}; one worker)"
              + (f", {len(decoded.failed)} failed to decode" if decoded.failed else ""))  # fmt: skip
    for name, reason in suite.skipped.items():
        print(f"skipped {name}: {reason}")
    print(table_legend(rows))
    return 0
