"""`vidslim info VIDEO [VIDEO...] [--json]`: what each video file holds.

Readable text by default; `--json` prints one JSON object for one video, a JSON list for several. A video
that cannot be read is one line on stderr; the others are still reported, and the exit status is then 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vidslim.errors import VidslimError


def add_parser(subparsers: Any) -> None:
    """Register `info` on the `vidslim` command."""
    parser = subparsers.add_parser(
        "info",
        help="what a video file holds (codec, size, fps, frames, duration)",
        description="Print the metadata of video files: codec, size, frame rate, frame count, duration, "
        "rotation.",
    )
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files")
    parser.add_argument("--json", action="store_true", help="print JSON (an object, or a list for several)")
    parser.add_argument(
        "--count-frames",
        action="store_true",
        help="count frames exactly by reading every packet (slower; for containers without a frame count)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Probe every video; print what was found; exit status 2 if any video failed."""
    from vidslim.cli.main import error_line
    from vidslim.io.probe import probe

    if len(args.videos) == 1:  # one video: let an error reach main(), which prints it and returns 2
        infos = [probe(args.videos[0], count_frames=args.count_frames).to_dict()]
        failed = 0
    else:
        infos, failed = [], 0
        for path in args.videos:
            try:
                infos.append(probe(path, count_frames=args.count_frames).to_dict())
            except VidslimError as error:
                print(error_line("info", error), file=sys.stderr)
                failed += 1
    if args.json:
        print(json.dumps(infos[0] if len(args.videos) == 1 else infos, indent=2))
    else:
        print("\n\n".join(format_info(info) for info in infos))
    return 2 if failed else 0


def format_info(info: dict[str, Any]) -> str:
    """Readable lines for one video's metadata."""
    from vidslim.io.probe import format_duration

    fps = info["fps"]
    frames = f"{info['num_frames']}" + (" (estimated)" if info["num_frames_estimated"] else "")
    duration = info["duration_s"]
    rows = [
        ("codec", f"{info['codec']} ({info['pix_fmt']})" if info["pix_fmt"] else info["codec"]),
        ("container", info["format"]),
        ("size", f"{info['width']} x {info['height']}" + (
            f" (pixel aspect {info['sample_aspect_ratio']})" if info["sample_aspect_ratio"] != "1:1" else "")),
        ("fps", f"{fps:.3f}".rstrip("0").rstrip(".") if fps else "unknown"),
        ("frames", frames),
        ("duration", "unknown" if duration is None else f"{duration:.3f} s ({format_duration(duration)})"),
        ("rotation", f"{info['rotation']} degrees" + (" (frames are turned upright on reading)"
                                                     if info["rotation"] else "")),
        ("bit rate", f"{info['bit_rate'] / 1000:.0f} kb/s" if info["bit_rate"] else "unknown"),
        ("audio", "yes" if info["has_audio"] else "no"),
        ("file size", _bytes(info["size_bytes"])),
    ]
    return "\n".join([info["path"], *(f"  {name:<10} {value}" for name, value in rows)])


def _bytes(size: int) -> str:
    """'1.5 MB' style text for a byte count."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"
