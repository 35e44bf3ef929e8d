"""`vidslim embed SOURCE --model CKPT --out INDEX_DIR`: embed every window of a video collection into a searchable
index (Parquet parts; resumable).

    vidslim embed videos/ --model runs/retrieval/model --out index/                  # one window per video
    vidslim embed videos.txt --model CKPT --method rlt --set tau=0.1 --window 4 --out index/ --json
    vidslim embed 'clips/**/*.mp4' --model CKPT --out /shared/index --ray auto        # on a Ray cluster

The recipe is `vidslim.jobs.embed_videos` (and `vidslim.scale.embed_on_ray` for --ray); this file parses and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vidslim.cli.options import add_device_option, amount, whole
from vidslim.errors import printable
from vidslim.jobs.failures import require_some_read, short_reason


def add_parser(subparsers: Any) -> None:
    """Register `embed` on the `vidslim` command."""
    parser = subparsers.add_parser(
        "embed", help="embed the windows of a video collection into a searchable index (Parquet, resumable)",
        description="Embed every window of every video SOURCE names (a folder, a .txt list, a glob) with a model; "
        "write Parquet parts to --out. Rerunning on the same --out resumes.",
    )
    parser.add_argument("source", metavar="SOURCE", help="folder, list file (one path per line) or glob pattern")
    parser.add_argument("--model", required=True, metavar="CKPT", help="checkpoint folder/file, cached hub id, or a "
                        "config name (random weights: speed measurements only)")
    parser.add_argument("--out", required=True, metavar="INDEX_DIR", help="index folder (created, or resumed)")
    add_model_options(parser)
    parser.add_argument("--batch-size", type=whole(1, "windows"), default=8, help="windows per batch (with "
                        "--fixed-batch), else the token budget in dense windows (default 8)")
    parser.add_argument("--token-budget", type=whole(1, "tokens"), default=None, metavar="TOKENS",
                        help="tokens per batch (default: --batch-size dense windows' tokens)")
    parser.add_argument("--fixed-batch", action="store_true", help="batch a fixed number of windows instead")
    parser.add_argument("--workers", type=whole(0, "processes"), default=2,
                        help="decoding processes (default 2; 0: decode inline)")
    parser.add_argument("--part-videos", type=whole(1, "videos"), default=64,
                        help="videos per Parquet part (default 64)")
    add_device_option(parser)
    parser.add_argument("--no-flops", action="store_true", help="leave the gflops column empty (skip counting)")
    parser.add_argument("--faiss", default="auto", choices=("auto", "always", "never"),
                        help="build a FAISS index: auto (large indexes, faiss installed), always, never")
    parser.add_argument("--ray", default=None, metavar="ADDRESS|auto|local", help="run on a Ray cluster (auto: the "
                        "running one; local: start one on this machine)")
    parser.add_argument("--actors", type=whole(1, "actors"), default=None, help="Ray actors (default: one per CPU)")
    parser.add_argument("--gpus-per-actor", type=amount(0), default=0.0, help="Ray: GPUs per actor (default 0)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.set_defaults(func=run)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--method, --set, --window, --stride: shared by embed and classify."""
    parser.add_argument("--method", default=None, help="reduction method replacing the checkpoint's (dense, rlt, "
                        "tempme, rlt+tempme, ...; default: the checkpoint's own)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a method setting, e.g. "
                        "tau=0.1 or tempme.r=2 (repeatable)")
    parser.add_argument("--card", default=None, metavar="FILE", help="a reduction card (`vidslim tune --out`) "
                        "replacing the checkpoint's reducers, instead of --method and --set")
    parser.add_argument("--window", type=float, default=None, metavar="SECONDS", help="window length (default: "
                        "the whole video is one window)")
    parser.add_argument("--stride", type=float, default=None, metavar="SECONDS", help="window step (default: "
                        "--window, consecutive windows)")


def method_of(args: argparse.Namespace) -> Any:
    """--card's reduction list, else --method (`vidslim.bench.card_file.card_or_method`)."""
    from vidslim.bench.card_file import card_or_method

    return card_or_method(args.card, args.method, args.set)


def parse_settings(items: list[str]) -> dict[str, Any]:
    """--set strings -> method settings, each key and value checked against the reducer registry."""
    from vidslim.bench.settings import parse_settings as parse

    return parse(items, (), "an embedding job (only method settings apply)")[1]


def _table(summary: dict[str, Any]) -> str:
    timing = summary.get("timing", {})
    lines = [
        f"{summary['embedded']} videos embedded ({summary['windows']} windows) in {summary['seconds']:.1f} s: "
        f"{summary['videos_per_s']:.2f} videos/s; {summary['already_done']} already done; "
        f"{summary['num_failed']} unreadable; index: {summary['out']}",
    ]
    if timing:
        lines.append(f"  decode {timing.get('decode_s', 0):.1f} s (waited {timing.get('decode_wait_s', 0):.1f} s), "
                     f"model {timing.get('model_s', 0):.1f} s: the bottleneck is {timing.get('bottleneck')}")
    for path, reason in sorted(summary["failed"].items()):
        lines.append(f"  skipped {printable(path)}: {short_reason(path, reason)}")
    if summary.get("faiss"):
        lines.append("  FAISS index built (faiss.index)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    progress = not args.json and sys.stderr.isatty()  # a bar only on a terminal: a log keeps one line per error
    options = dict(method=method_of(args), settings=parse_settings(args.set), window=args.window, stride=args.stride,
                   batch_size=args.batch_size, token_budget=args.token_budget, fixed_batch=args.fixed_batch)
    if args.ray:
        from vidslim.scale import embed_on_ray

        summary = embed_on_ray(args.source, args.model, args.out, address=None if args.ray == "local" else args.ray,
                               actors=args.actors, gpus_per_actor=args.gpus_per_actor, faiss=args.faiss,
                               progress=progress, **options)
        require_some_read(summary.videos, summary.failed)  # the local job checks this itself
    else:
        from vidslim.bench.flops import flops_of
        from vidslim.jobs.embed import embed_videos

        summary = embed_videos(args.source, args.model, args.out, workers=args.workers, part_videos=args.part_videos,
                               device=args.device, flops=None if args.no_flops else flops_of, faiss=args.faiss,
                               progress=progress, **options)
    result = summary.to_dict()
    print(json.dumps(result) if args.json else _table(result))
    return 0
