"""`vidslim tune --model M --video V --target speedup=2`: the setting of a method that meets a budget on your clips.

    vidslim tune --model videomae-b16 --video a.mp4 --video b.mp4 --target speedup=2 --out rlt-2x.json
    vidslim tune --model clip-b16 --video a.mp4 --method tempme --target gflops=60
    vidslim tune --model clip-b16 --video a.mp4 --method tome --target keep=0.5 --json
    vidslim tune --model videomae-b16 --video a.mp4 --plot pareto.png     # every method: speedup vs tokens kept
    vidslim bench --model videomae-b16 --card rlt-2x.json --video a.mp4   # check it independently

Targets: speedup=S (over dense, measured), ms=T (per clip, measured), gflops=X (per clip, counted exactly),
keep=F (tokens into attention, fraction of dense's). The method's knob is solved (RLT tau, ToMe/TempMe r,
TokenPrune/random keep; `vidslim.bench.tune`); the card written to --out is a reduction card that `--card` of
bench, embed, classify, eval and export and `vs.load_model(..., reduction=build_reduction(card))` accept; it records
the frames and model config fields it was tuned at, which `bench --card` uses unless told otherwise. Without
--video the sample videos (bigbuckbunny, bikes, carphone) are used. Timing runs in chunks of --repeat rounds until
the speedup is precise (at most --max-rounds); with --threads 1 it is decided on the timed thread's CPU seconds
(--clock), which a busy machine does not skew, and the wall-clock figure is printed beside it. Accuracy is not
promised: no labels are seen.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vidslim.cli.options import add_threads_option, set_timing_threads
from vidslim.errors import ConfigError

#: canvas of the --plot picture (width, height) in pixels
PLOT_SIZE = (820, 540)


def add_parser(subparsers: Any) -> None:
    """Register `tune` on the `vidslim` command."""
    parser = subparsers.add_parser("tune", help="solve a method's knob for a speed, FLOP or token budget on your clips",
                                   description=__doc__.split("\n")[0].split(": ", 1)[1])
    parser.add_argument("--model", required=True, metavar="NAME|PATH",
                        help="a registered model name or anything vs.load_model reads")
    parser.add_argument("--video", action="append", default=[], metavar="PATH",
                        help="a sample clip (repeatable; default: the bundled sample videos)")
    parser.add_argument("--target", default=None, metavar="KIND=VALUE",
                        help="speedup=2 | gflops=60 | keep=0.5 | ms=300")
    parser.add_argument("--method", default="rlt", help="rlt (default), tome, tempme, tokenprune, random, rlt+tempme")
    parser.add_argument("--frames", type=int, default=None, help="frames per clip (default: the model's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a model config field (e.g. image_size=112) or a fixed method setting")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed rounds per chunk; chunks are added until the speedup is precise (default 5)")
    parser.add_argument("--max-rounds", type=int, default=None, help="at most this many rounds (default 3 x --repeat)")
    parser.add_argument("--clock", default="auto", choices=("auto", "wall", "cpu"),
                        help="what decides: wall time, or the timed thread's CPU seconds (auto: CPU with --threads 1, "
                             "which a busy machine does not skew)")
    add_threads_option(parser, timed=True)
    parser.add_argument("--out", default=None, metavar="FILE", help="write the reduction card here (JSON)")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="draw measured speedup (with spread) against tokens kept for every method")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def _say(message: str) -> None:
    print(f"[tune] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    import torch

    from vidslim.bench.card_file import write_card
    from vidslim.bench.settings import parse_settings
    from vidslim.bench.source import ModelSource, config_fields
    from vidslim.bench.tune import DOES_NOT_PROMISE, Tuner, check_method, combination_note, parse_target, read_clips
    from vidslim.io.paths import output_file

    if args.target is None and args.plot is None:
        raise ConfigError("give --target KIND=VALUE (speedup=2, gflops=60, keep=0.5, ms=300) or --plot FILE.png")
    if args.repeat < 1 or (args.frames is not None and args.frames < 1) or (args.max_rounds or 1) < 1:
        raise ConfigError("--repeat, --max-rounds and --frames must be >= 1")
    if args.target is not None:
        parse_target(args.target)  # a bad target is one line before any model is built or clip read
    for option, path in (("--out", args.out), ("--plot", args.plot)):
        if path is not None:
            output_file(path, option)  # written at the end: refuse a missing folder before minutes of timing
    set_timing_threads(args.threads, "tune")
    source = ModelSource.open(args.model)
    config, options = parse_settings(args.set, config_fields(source), repr(args.model))
    if args.frames:
        config["num_frames"] = args.frames
    if config:
        source = ModelSource.open(args.model, **config)
    if args.target is not None:  # a method or setting that cannot be tuned is one line before any progress output
        check_method(args.method, source, options)
    videos = args.video
    if not videos:
        from vidslim.io.samples import sample_videos

        videos = [str(p) for p in sample_videos().values()]
    tuner = Tuner(source, read_clips(videos, source, args.frames), repeat=args.repeat, max_rounds=args.max_rounds,
                  clock=args.clock, progress=_say)
    out: dict[str, Any] = {"model": args.model, "videos": videos, "frames": args.frames or source.config.num_frames,
                           "threads": torch.get_num_threads()}
    if args.target is not None:
        _say(f"tuning {args.method} on {len(videos)} clip(s) for {args.target}")
        result = tuner.solve(args.method, args.target, options)
        note = combination_note(tuner, result)
        if note:
            result.notes.append(note)
        out["result"] = result.to_dict()
        if args.out:  # with the frames and config it was tuned at, so `bench --card` times it there
            out["card"] = str(write_card(args.out, result.card, **{k: v for k, v in result.to_dict().items()
                                                                     if k != "steps"}, videos=videos))
    if args.plot is not None:
        from vidslim.bench.pareto import pareto_note, pareto_points
        from vidslim.viz.plot import plot_speedup

        skipped: dict[str, str] = {}
        points = pareto_points(tuner, options=options, progress=_say, skipped=skipped)
        out["pareto_skipped"] = skipped
        out["pareto"] = [dict(zip(("setting", "kept", "speedup", "q25", "q75", "reliable", "method"), p, strict=True))
                         for p in points]
        out["plot_note"] = pareto_note(tuner, points, [Path(v).stem for v in videos])
        out["plot"] = str(plot_speedup(points, args.plot, title=f"{args.model}: measured speedup vs tokens kept",
                                       size=PLOT_SIZE, note=out["plot_note"]))
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if "result" in out:
        _print_result(out["result"], out.get("card"))
    if "plot" in out:
        for p in out["pareto"]:
            mark = "" if p["reliable"] else "  (unreliable: spread too wide)"
            print(f"  {p['method'] + ' ' + p['setting']:<22} kept {p['kept']:.2f}  speedup {p['speedup']:.2f}x "
                  f"[{p['q25']:.2f}-{p['q75']:.2f}]{mark}")
        for method, reason in out["pareto_skipped"].items():
            print(f"  {method}: not drawn ({reason})")
        print(f"plot: {out['plot']}")
    for line in DOES_NOT_PROMISE:
        print(f"not promised: {line}")
    return 0


def _print_result(r: dict[str, Any], card: str | None) -> None:
    p, m, k = r["predicted"], r["measured"], r["kept_spread"]
    print(f"{r['model']} {r['method']}: {r['knob']}={r['value']:g} for {r['target']} "
          f"({'reached' if r['reached'] else 'NOT reached'})")
    print(f"  predicted: {p['gflops']:.2f} GFLOPs per clip ({p['flop_ratio']:.3f} of dense), tokens kept "
          f"{p['keep']:.3f}" + (f", speedup {p['speedup']:.2f}x" if "speedup" in p else "")
          + (f", {p['ms']:.0f} ms per clip" if "ms" in p else ""))
    print(f"  tokens kept across clips: min {k['min']:.3f}, mean {k['mean']:.3f}, max {k['max']:.3f}")
    if m:
        label = (f"{m['speedup']:.2f}x [{m['speedup_q25']:.2f}-{m['speedup_q75']:.2f}]" if m["reliable"]
                 else f"~{m['speedup']:.2f}x? ({m['verdict']})")
        clock = "the timed thread's CPU seconds" if m.get("clock") == "cpu" else "wall clock"
        print(f"  measured ({clock}): speedup {label}, {m['ms']:.0f} ms per clip (dense {m['dense_ms']:.0f}), "
              f"{m['rounds']} paired rounds")
    for note in r["notes"]:
        print(f"  note: {note}")
    if card:
        print(f"card: {card} (use: vidslim bench --model ... --card {card})")
