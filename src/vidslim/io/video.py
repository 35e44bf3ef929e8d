"""`read_video` and `read_clips`: decoded, sampled, resized frames of a video file as a `Clip`.

How a read works (see `decode.py`): packets of the requested window are scanned for their timestamps
(no decoding), the frames to keep are chosen from those timestamps (`sampling.py`), then only the GOPs that
hold chosen frames are decoded, seeking over the rest, and each chosen frame is converted to RGB at the
output size as it comes out of the decoder (`geometry.py`). Memory holds the chosen frames, already small.

Times are seconds since the start of the video stream (its first timestamp), so `start=0` is the first
frame whatever the container's clock says. A window is `start <= t < end`; `end` past the end of the video
means "to the end".
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import av
import numpy as np
import torch

from vidslim.errors import SamplingError, VideoDecodeError
from vidslim.io import sampling as smp
from vidslim.io._av import OpenVideo, frame_rotation, no_frame_error, open_video
from vidslim.io.decode import StreamIndex, count_before, decode_targets, missing_frames, scan
from vidslim.io.geometry import Geometry, Size, check_geometry, plan_geometry
from vidslim.io.limits import check_fps, check_frames

Sampling = Literal["uniform", "random"]
SAMPLINGS = ("uniform", "random")


@dataclass
class Clip:
    """Frames read from one video.

    frames: uint8 [T, H, W, 3] RGB, upright. timestamps: float64 [T], seconds since the stream's start.
    indices: int64 [T] frame numbers in the video (0 is the first frame; for a window of a variable-rate
    video the frames before it are counted, by demuxing only). fps: the source's average frame rate.
    repeated: some frame appears more than once (more frames asked for than the window holds, or a rate
    above the source's). num_decoded: frames the decoder produced, a measure of the work done.
    num_substituted: sampled frames that could not be decoded (corrupt or truncated data) and were
    replaced by the nearest decodable frame.
    """

    frames: torch.Tensor
    timestamps: torch.Tensor
    indices: torch.Tensor
    fps: float
    path: str
    repeated: bool = False
    num_decoded: int = 0
    num_substituted: int = 0

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the frames."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])


def read_video(
    path: str | os.PathLike[str],
    num_frames: int | None = None,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
    size: Size = None,
    crop: Literal["center", "random"] | None = "center",
    sampling: Sampling = "uniform",
    generator: torch.Generator | None = None,
    interpolation: str = "bilinear",
    threads: bool | int = True,
) -> Clip:
    """Read frames of `path` between `start` and `end` seconds (default: the whole video).

    Which frames:
    - num_frames only: N of the window's M frames; sampling="uniform" takes `floor((i + 1/2) * M / N)`
      (TSN evaluation), sampling="random" one random frame per segment (TSN training). N > M repeats frames.
    - fps only: every frame on screen at `start + k / fps` through the window.
    - both: N frames at `fps`, starting at the window's start ("uniform") or at a random time that keeps the
      clip inside the window ("random"); a window shorter than the clip repeats its last frame.
    - neither: every frame of the window.
    size: None (as stored, upright), an int (short side resized to it, then a `crop` of size x size:
    "center", "random" or None for no crop) or (H, W) for an exact resize. Random choices draw from torch's
    `generator`. threads: FFmpeg's decoding threads (True: one per core; an int: that many; False: none).
    """
    _check_read_args(num_frames, fps, sampling)
    num_frames = None if num_frames is None else int(num_frames)

    def choose(times: np.ndarray, window: tuple[float, float], rate: float) -> list[np.ndarray]:
        if fps is not None:
            clip_start = window[0]
            if num_frames is not None and sampling == "random":
                room = max(window[1] - window[0] - num_frames / fps, 0.0)
                clip_start += room * float(torch.rand((), generator=generator, dtype=torch.float64))
            return [smp.rate_indices(times, fps, clip_start, num_frames, window[1])]
        if num_frames is None:
            return [np.arange(len(times), dtype=np.int64)]
        if sampling == "random":
            return [smp.segment_indices(len(times), num_frames, generator)]
        return [smp.uniform_indices(len(times), num_frames)]

    return _read(path, start, end, choose, size, crop, generator, interpolation, threads)[0]


def read_clips(
    path: str | os.PathLike[str],
    num_clips: int,
    num_frames: int,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
    size: Size = None,
    crop: Literal["center", "random"] | None = "center",
    generator: torch.Generator | None = None,
    interpolation: str = "bilinear",
    threads: bool | int = True,
) -> list[Clip]:
    """Several clips of one video for multi-view testing, decoded in one pass; returns a list of `Clip`.

    With `fps`: `num_clips` windows of `num_frames / fps` seconds spread evenly from the start to the end of
    [start, end] (one clip: centred), N frames at `fps` in each (the SlowFast/VideoMAE test protocol).
    Without: every clip covers the whole window with N uniformly spaced frames, clip k taking the frame at
    offset (k + 1/2) / K inside each segment, so the clips interleave (TSN multi-clip testing).
    Stack them with `torch.stack([c.frames for c in clips])` for a [K, T, H, W, 3] batch.
    """
    if not _positive_int(num_clips):
        raise SamplingError(f"num_clips must be a positive int, got {num_clips!r}")
    if num_frames is None:
        raise SamplingError("read_clips needs num_frames (frames per clip)")
    _check_read_args(num_frames, fps, "uniform")
    num_clips, num_frames = int(num_clips), int(num_frames)

    def choose(times: np.ndarray, window: tuple[float, float], rate: float) -> list[np.ndarray]:
        if fps is None:
            return [smp.uniform_indices(len(times), num_frames, offset)
                    for offset in smp.interleaved_offsets(num_clips)]
        starts = smp.clip_starts(window[0], window[1], num_clips, num_frames / fps)
        return [smp.rate_indices(times, fps, float(s), num_frames) for s in starts]

    return _read(path, start, end, choose, size, crop, generator, interpolation, threads)


def read_windows(
    path: str | os.PathLike[str],
    spans: Sequence[tuple[float, float]],
    num_frames: int,
    size: Size = None,
    crop: Literal["center", "random"] | None = "center",
    interpolation: str = "bilinear",
    threads: bool | int = True,
) -> list[Clip]:
    """`[read_video(path, num_frames, start=s, end=e, ...) for s, e in spans]`, decoded in one pass.

    Each clip holds the same frames as its own `read_video` call (N uniformly spaced frames of the window
    `s <= t < e`), but the file is opened and scanned once and every frame the windows share or that lies
    between them is decoded once, in one sweep: reading the windows one by one decodes from the keyframe
    before each window again, which on videos with few keyframes decodes the start of the video once per
    window.
    """
    _check_read_args(num_frames, None, "uniform")
    if not spans:
        raise SamplingError("read_windows needs at least one (start, end) window")
    checked = [_check_window(s, e) for s, e in spans]
    name = os.fspath(path)

    def choose(times: np.ndarray, window: tuple[float, float], rate: float) -> list[np.ndarray]:
        out = []
        for start, end in checked:
            lo, hi = _window(name, times, start, end, rate)
            out.append(lo + smp.uniform_indices(hi - lo, int(num_frames)))
        return out

    return _read(path, None, None, choose, size, crop, None, interpolation, threads)


def _check_read_args(num_frames: int | None, fps: float | None, sampling: str) -> None:
    """Reject impossible sampling arguments, naming the argument."""
    if num_frames is not None:
        check_frames(num_frames, "num_frames")
    if fps is not None:
        check_fps(fps, "fps")
    if sampling not in SAMPLINGS:
        raise SamplingError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")


def _positive_int(value: object) -> bool:
    """An integer (Python or numpy, not a bool) of at least 1."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1


# choose(times of the window's frames, (window start, window end) in seconds, frame rate) -> frame positions per clip
Chooser = Callable[[np.ndarray, tuple[float, float], float], list[np.ndarray]]


def _read(
    path: str | os.PathLike[str],
    start: float | None,
    end: float | None,
    choose: Chooser,
    size: Size,
    crop: str | None,
    generator: torch.Generator | None,
    interpolation: str,
    threads: bool | int,
) -> list[Clip]:
    """Scan the window, let `choose` pick frame positions per clip, decode their union once, build Clips."""
    check_geometry(size, crop, interpolation)
    start, end = _check_window(start, end)
    with ExitStack() as stack:
        video = stack.enter_context(open_video(path, threads))

        def reopen() -> OpenVideo:
            return stack.enter_context(open_video(path, threads))

        clock = _Clock.of(video)
        start_pts = clock.to_pts(start, math.floor) if start else None
        end_pts = None if end is None else clock.to_pts(end, math.ceil) + 1
        video, index = scan(video, start_pts, end_pts, reopen)
        if len(index.pts) == 0:
            raise no_frame_error(video.path, 0)
        cut = missing_frames(video, index)
        if cut is not None:
            raise VideoDecodeError(video.path, f"truncated: the file ends after {cut[0]} of the {cut[1]} frames its "
                                   "header lists", "the download or copy was cut short: fetch or copy it again")
        clock = clock.fit(index)
        times = clock.seconds(index.pts)
        lo, hi = _window(video.path, times, start, end, clock.fps)
        window = (times[lo] if start is None else start,
                  (times[hi - 1] + 1 / clock.fps) if end is None else min(end, times[-1] + 1 / clock.fps))
        video, first_number = _first_frame_number(video, index, times, clock.fps, reopen)
        positions = [lo + p for p in choose(times[lo:hi], window, clock.fps)]
        wanted = np.concatenate(positions)
        targets, inverse = np.unique(index.pts[wanted], return_inverse=True)
        sink = _Sink(len(targets))
        convert = sink.converter(size, crop, interpolation, generator)
        result = decode_targets(video, index, targets, convert, sink, reopen)
    if result.found[0] < 0:
        raise no_frame_error(video.path, result.num_errors)
    frames, found = sink.finish(result.found)
    substituted = found != targets
    clips, offset = [], 0
    for pos in positions:
        rows = torch.from_numpy(inverse[offset : offset + len(pos)])
        offset += len(pos)
        clip_pts = found[rows.numpy()]
        seconds = clock.seconds(clip_pts)
        numbers = first_number + np.searchsorted(index.pts, clip_pts)
        every = len(rows) == len(targets) and bool((rows == torch.arange(len(targets))).all())
        clips.append(Clip(
            frames=frames if every else frames.index_select(0, rows),  # no copy when a clip takes all
            timestamps=torch.from_numpy(seconds),
            indices=torch.from_numpy(numbers.astype(np.int64)),
            fps=clock.fps,
            path=video.path,
            repeated=bool(len(np.unique(clip_pts)) < len(clip_pts)),
            num_decoded=result.num_decoded,
            num_substituted=int(substituted[rows.numpy()].sum()),
        ))
    return clips


def _first_frame_number(
    video: OpenVideo, index: StreamIndex, times: np.ndarray, fps: float, reopen: Callable[[], OpenVideo]
) -> tuple[OpenVideo, int]:
    """Frame number of the first indexed frame: 0 from the start; from its time at a constant frame rate;
    otherwise (variable frame rate) counted by demuxing the packets before it."""
    if index.from_start:
        return video, 0
    steps = np.diff(times) * fps
    if len(steps) and np.all(np.abs(steps - 1) < 0.01):
        return video, round(times[0] * fps)
    return count_before(video, int(index.pts[0]), reopen)


def _check_window(start: float | None, end: float | None) -> tuple[float | None, float | None]:
    """Validate start/end (seconds), naming the argument."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise SamplingError(f"{name} must be a non-negative number of seconds or None, got {value!r}")
    if start is not None and end is not None and end <= start:
        raise SamplingError(f"end ({end} s) must be after start ({start} s)")
    return (None if start is None else float(start)), (None if end is None else float(end))


def _window(path: str, times: np.ndarray, start: float | None, end: float | None, fps: float) -> tuple[int, int]:
    """[lo, hi) of the frames in the window; a window between two frames takes the frame on screen."""
    lo, hi = smp.window_slice(times, start, end)
    if lo < hi:
        return lo, hi
    duration = times[-1] + 1 / fps
    if start is not None and start >= duration - smp.TIME_EPS:
        raise SamplingError(f"{path}: start={start} s is past the end of the video ({duration:.3f} s)")
    shown = max(lo - 1, 0)  # the frame on screen at `start`
    return shown, shown + 1


@dataclass(frozen=True)
class _Clock:
    """Converts between stream ticks and seconds since the stream's first timestamp."""

    origin: int
    tick: Fraction
    fps: float

    @classmethod
    def of(cls, video: OpenVideo) -> _Clock:
        rate = video.rate
        origin = video.stream.start_time if video.stream.start_time is not None else 0
        return cls(int(origin), video.time_base, float(rate) if rate else 0.0)

    def fit(self, index: StreamIndex) -> _Clock:
        """Adjust to what the scan found: untimed streams count frames; an unknown rate comes from timestamps."""
        fps = self.fps
        if not index.timed:
            fps = fps or 25.0
            return _Clock(0, Fraction(1) / Fraction(fps).limit_denominator(1001000), fps)
        if fps <= 0:
            steps = np.diff(index.pts)
            steps = steps[steps > 0]
            fps = float(1 / (float(np.median(steps)) * self.tick)) if len(steps) else 1.0
        return _Clock(self.origin, self.tick, fps)

    def to_pts(self, seconds: float, rounding: Callable[[Fraction], int]) -> int:
        return self.origin + rounding(Fraction(seconds) / self.tick)

    def seconds(self, pts: np.ndarray) -> np.ndarray:
        return (np.asarray(pts, dtype=np.int64) - self.origin) * (self.tick.numerator / self.tick.denominator)


class _Sink:
    """Holds converted frames; allocated on the first frame, when the output geometry is known."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.buffer: np.ndarray | None = None

    def converter(
        self, size: Size, crop: str | None, interpolation: str, generator: torch.Generator | None
    ) -> Callable[[av.VideoFrame], np.ndarray]:
        """A convert function that plans the geometry from the first decoded frame (size, rotation)."""
        geometry: list[Geometry] = []

        def convert(frame: av.VideoFrame) -> np.ndarray:
            if not geometry:
                geometry.append(plan_geometry(frame.width, frame.height, frame_rotation(frame), size, crop,
                                              interpolation, generator))
            return geometry[0].convert(frame)

        return convert

    def __setitem__(self, i: int, frame: np.ndarray) -> None:
        if self.buffer is None:
            self.buffer = np.empty((self.count, *frame.shape), dtype=np.uint8)
        self.buffer[i] = frame

    def finish(self, found: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """Frames as a tensor, filling targets past the end of a truncated stream with the last frame."""
        assert self.buffer is not None
        filled = int((found >= 0).sum())
        if filled < len(found):
            self.buffer[filled:] = self.buffer[filled - 1]
            found = found.copy()
            found[filled:] = found[filled - 1]
        return torch.from_numpy(self.buffer), found
