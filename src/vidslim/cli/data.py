"""`vidslim data ...`: dataset tools.

    vidslim data synth OUT_DIR [--videos N] [--fps F] [--seconds S] [--size PX] [--seed S] [--json]

`synth` writes the built-in synthetic dataset (moving digits over a static background, captions and 8 motion
classes; see `vidslim.data.synth`), readable with the generic caption and label loaders.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register `data` (and its subcommands) on the `vidslim` command."""
    parser = subparsers.add_parser("data", help="dataset tools (synthetic data)",
                                   description="Dataset tools: write the built-in synthetic dataset.")
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    synth = commands.add_parser(
        "synth", help="write synthetic videos of moving digits with captions and motion labels",
        description="Write short mp4 videos of a coloured digit moving over a static textured background, with "
        "captions ('a red 3 moves left, then up') and 8 motion classes in OUT_DIR/annotations.jsonl.",
    )
    synth.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the videos and annotations into")
    synth.add_argument("--videos", type=int, metavar="N", default=16, help="number of videos (default 16)")
    synth.add_argument("--fps", type=float, metavar="F", default=8.0, help="frame rate (default 8)")
    synth.add_argument("--seconds", type=float, metavar="S", default=4.0, help="seconds per video (default 4)")
    synth.add_argument("--size", type=int, metavar="PX", default=64, help="frame side in pixels, even (default 64)")
    synth.add_argument("--seed", type=int, metavar="S", default=0, help="random seed (same seed, same data)")
    synth.add_argument("--json", action="store_true", help="print a JSON summary")
    synth.set_defaults(func=run_synth)

    def no_subcommand(args: argparse.Namespace) -> int:
        parser.print_help()
        return 1

    parser.set_defaults(func=no_subcommand)


def run_synth(args: argparse.Namespace) -> int:
    """Write the synthetic dataset and print where it went."""
    from vidslim.data.synth import CLASSES, check_synthetic, make_synthetic
    from vidslim.io.paths import output_folder

    options = {"num_videos": "--videos", "fps": "--fps", "seconds": "--seconds", "size": "--size"}
    check_synthetic(args.videos, args.fps, args.seconds, args.size, names=options.__getitem__)
    output_folder(args.out_dir, "OUT_DIR")
    annotations = make_synthetic(args.out_dir, num_videos=args.videos, fps=args.fps, seconds=args.seconds,
                                 size=args.size, seed=args.seed, progress=not args.json)
    summary = {
        "out_dir": str(annotations.parent), "annotations": str(annotations),
        "classes": str(annotations.parent / "classes.json"), "videos": args.videos, "fps": args.fps,
        "seconds": args.seconds, "size": args.size, "seed": args.seed, "num_classes": len(CLASSES),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {args.videos} videos ({args.size}x{args.size}, {args.fps:g} fps, {args.seconds:g} s) to "
              f"{summary['out_dir']}\nannotations: {annotations}")
    return 0
