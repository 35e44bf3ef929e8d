"""End to end: decode real videos at the model's frames and size, and say when decoding is the bottleneck.

    decoded = decode_folder("videos/", frames=8, spec=model.input_spec)
    decoded.clips                    # [N, ...] prepared as the model takes them (its input spec)
    decoded.ms_per_video             # median decode + resize + normalise time of one video
    for line in bottleneck_warnings(rows, decoded.ms_per_video): print(line)

Each file is read the way the data pipeline reads evaluation clips (`vidslim.io.read_video`: `frames` frames
sampled uniformly over the whole video, short side resized to the model's size, centre crop) and prepared with the
model's input spec, one video at a time on the calling thread, so the figure is the cost of one decoding worker.
A file that fails to decode is skipped and counted (`failed`). When decoding one video takes longer than the
model needs per video, a data loader with that many workers cannot keep the model busy: `bottleneck_warnings`
names those rows with both figures.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vidslim.bench.suite import BenchRow
from vidslim.errors import ConfigError, VideoDecodeError
from vidslim.io.input_spec import InputSpec

#: file name endings taken as videos in a folder
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")

Decoder = Callable[[Path], Tensor]


@dataclasses.dataclass(frozen=True)
class Decoded:
    """Clips of the videos that decoded, seconds each took, and the files that failed (path -> reason)."""

    clips: Tensor
    paths: tuple[Path, ...]
    seconds: tuple[float, ...]
    failed: dict[str, str]

    @property
    def ms_per_video(self) -> float:
        """Median milliseconds to decode one video."""
        return float(np.median(self.seconds)) * 1e3


def find_videos(folder: str | Path) -> list[Path]:
    """Video files directly in `folder`, sorted; a ConfigError naming the folder when it holds none."""
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"--end-to-end {str(folder)!r} is not a folder; pass a folder of videos")
    paths = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not paths:
        raise ConfigError(f"--end-to-end {str(folder)!r} holds no videos ({', '.join(VIDEO_SUFFIXES)})")
    return paths


def clip_decoder(frames: int, spec: InputSpec) -> Decoder:
    """The decoder the benchmark uses: `frames` uniform frames, prepared as the model takes them (its input spec)."""

    def decode(path: Path) -> Tensor:
        return spec.prepare(spec.read(path, num_frames=frames))[0]

    return decode


def decode_folder(
    paths: str | Path | Sequence[Path],
    frames: int,
    spec: InputSpec,
    decoder: Decoder | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Decoded:
    """Decode every video (a folder or a list of files) once, timing each; `decoder` replaces `clip_decoder`."""
    files = find_videos(paths) if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    decode = decoder or clip_decoder(frames, spec)
    clips, kept, seconds, failed = [], [], [], {}
    for path in files:
        began = clock()
        try:
            clip = decode(path)
        except VideoDecodeError as error:
            failed[str(path)] = str(error)
            continue
        seconds.append(clock() - began)
        clips.append(clip)
        kept.append(path)
    if not clips:
        reasons = "; ".join(f"{k}: {v}" for k, v in failed.items())
        raise ConfigError(f"none of the {len(files)} videos decoded: {reasons}")
    return Decoded(torch.stack(clips), tuple(kept), tuple(seconds), failed)


def bottleneck_warnings(rows: Sequence[BenchRow], decode_ms_per_video: float) -> list[str]:
    """One warning per row whose model time per video is below the decode time per video."""
    out = []
    for row in rows:
        model_ms = row.model_ms_per_video
        if model_ms is not None and decode_ms_per_video > model_ms:
            out.append(
                f"warning: decoding is the bottleneck for {row.method} ({row.mode}, batch {row.batch}, {row.precision})"
                f": decoding takes {decode_ms_per_video:.1f} ms per video, the model {model_ms:.1f} ms; use about "
                f"{decode_ms_per_video / model_ms:.1f}x as many decoding workers (DataLoader num_workers) or "
                "pre-decoded clips to keep the model busy"
            )
    return out
