"""Small videos written with PyAV for the io tests, each frame carrying its own index as a barcode.

Frame i is split into `BITS` horizontal bands; band b is white when bit b of i is set, black otherwise. The
bands are gray (no chroma) and several pixels tall, so the index survives lossy coding, resizing and
cropping (crops of landscape frames keep the full height): `frame_ids(frames)` reads it back.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from video_files import X264_DEFAULTS, write_video

BITS = 10  # frame indices up to 1023


def pattern(index: int, height: int, width: int) -> np.ndarray:
    """RGB uint8 [height, width, 3] frame whose horizontal bands spell `index` in binary (bit 0 on top)."""
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    edges = [b * height // BITS for b in range(BITS + 1)]
    for bit in range(BITS):
        if index >> bit & 1:
            frame[edges[bit] : edges[bit + 1]] = 255
    return frame


def frame_ids(frames: torch.Tensor | np.ndarray) -> list[int]:
    """Indices spelled by `pattern` frames [T, H, W, 3], read at the middle row of each band."""
    array = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    height = array.shape[1]
    rows = [int((b + 0.5) * height / BITS) for b in range(BITS)]
    bits = array[:, rows].astype(np.float64).mean(axis=(2, 3)) > 127
    return [int(sum(int(v) << b for b, v in enumerate(row))) for row in bits]


def write_pattern_video(
    path: Path,
    num_frames: int = 50,
    fps: int = 25,
    width: int = 80,
    height: int = 64,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    gop: int = 10,
    rotation: int | None = None,
    options: dict[str, str] | None = None,
    frame: Callable[[int, int, int], np.ndarray] = pattern,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Write `num_frames` frames `frame(i, height, width)` at `fps` and return `path`."""
    # libx264 gets crf 12 / veryfast (which keeps B-frames, as real files have), with `options` on top
    opts = dict(X264_DEFAULTS) if codec == "libx264" else {}
    opts.update(options or {})
    frames = np.stack([frame(i, height, width) for i in range(num_frames)])
    return write_video(path, frames, fps, codec, pix_fmt, gop=gop, rotation=rotation,
                       container_options=container_options, **opts)


def write_vfr_video(path: Path, times_ms: list[int], width: int = 80, height: int = 64) -> Path:
    """Variable frame rate H.264: frame i (a `pattern`) shown at `times_ms[i]` milliseconds."""
    frames = np.stack([pattern(i, height, width) for i in range(len(times_ms))])
    # keyframes at frames 0, 3, 6, 9: a window read seeks past frames it must count
    return write_video(path, frames, 25, "libx264", "yuv420p", gop=3, pts=times_ms, time_base=Fraction(1, 1000),
                       crf="12", preset="veryfast")


@pytest.fixture
def make_video(tmp_path: Path) -> Callable[..., Path]:
    """Factory: make_video("name.mp4", **write_pattern_video options) writes into the test's tmp_path."""

    def make(name: str, **kwargs) -> Path:
        return write_pattern_video(tmp_path / name, **kwargs)

    return make


@pytest.fixture
def make_vfr_video(tmp_path: Path) -> Callable[[str, list[int]], Path]:
    """Factory: make_vfr_video("name.mp4", times_ms) writes a variable frame rate video into tmp_path."""
    return lambda name, times_ms: write_vfr_video(tmp_path / name, times_ms)


@pytest.fixture
def mp4(make_video: Callable[..., Path]) -> Path:
    """2 s of H.264 (with B-frames) at 25 fps, 80x64, a keyframe every 10 frames: 50 frames."""
    return make_video("clip.mp4")


@pytest.fixture(scope="session")
def long_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s of H.264 at 25 fps (500 frames), 80x64, a keyframe every second: for seeking tests."""
    return write_pattern_video(tmp_path_factory.mktemp("long") / "long.mp4", num_frames=500, gop=25)


@pytest.fixture
def ids() -> Callable[[torch.Tensor], list[int]]:
    """The barcode reader `frame_ids`, as a fixture."""
    return frame_ids
