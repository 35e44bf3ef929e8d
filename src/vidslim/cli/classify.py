"""`vidslim classify VIDEO... --model CKPT [-k 5]`: the top-k class names with scores of each window and pooled
over each video (--json for machines).

The recipe is `vidslim.jobs.classify_videos`; this file parses and prints.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from vidslim.cli.embed import add_model_options, method_of, parse_settings
from vidslim.cli.options import add_device_option
from vidslim.errors import printable
from vidslim.jobs.failures import short_reason


def add_parser(subparsers: Any) -> None:
    """Register `classify` on the `vidslim` command."""
    parser = subparsers.add_parser(
        "classify", help="top-k class names of videos, per window and pooled",
        description="Classify each window of each VIDEO with a classification model; print the top-k class names "
        "with their scores per window and pooled over the video.",
    )
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files, folders, list files or globs")
    parser.add_argument("--model", required=True, metavar="CKPT", help="a classification checkpoint")
    parser.add_argument("-k", type=int, default=5, help="classes shown (default 5)")
    parser.add_argument("--classes", default=None, metavar="classes.json", help="class names (a JSON list), when "
                        "the checkpoint carries none")
    add_model_options(parser)
    add_device_option(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vidslim.jobs.classify import classify_videos
    from vidslim.jobs.sources import list_videos

    paths = sorted({p for source in args.videos for p in list_videos(source)})
    results = classify_videos(paths, args.model, k=args.k, classes=args.classes, method=method_of(args),
                              settings=parse_settings(args.set), window=args.window, stride=args.stride,
                              device=args.device)
    if args.json:
        print(json.dumps({"videos": [r.to_dict() for r in results],
                          "num_failed": sum(r.error is not None for r in results)}))
        return 0
    for r in results:
        if r.error:
            print(f"{printable(r.path)}: skipped ({short_reason(r.path, r.error)})")
            continue
        print(f"{printable(r.path)}: " + ", ".join(f"{name} {score:.3f}" for name, score in r.pooled))
        if len(r.windows) > 1:
            for w in r.windows:
                top = ", ".join(f"{name} {score:.3f}" for name, score in w["top"])
                print(f"  {w['start_s']:.2f}-{w['end_s']:.2f} s: {top}")
    return 0
