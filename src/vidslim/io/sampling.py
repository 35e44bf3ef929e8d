"""Which frames to read: pure functions from frame counts or timestamps to frame positions.

Nothing here touches a video file, so every rule can be checked by hand. Positions are 0-based offsets into
the frames of the window being sampled (`video.py` adds the window's offset).

The rules:
- uniform: frame `floor((i + 1/2) * M / N)` for i in 0..N-1 out of M frames: the middle frame of each of N
  equal segments, which is also TSN's evaluation sampling. With N > M, every frame repeats N/M times (evenly).
- random segments (TSN training): one frame drawn uniformly inside each of the N equal segments
  `[floor(i*M/N), floor((i+1)*M/N))`; a segment shorter than one frame (N > M) takes its first frame.
- rate: the frame on screen at times `t0 + k / fps` (the last frame whose timestamp is at or before that
  time); asking for more than the source rate repeats frames.
- multi-view without a rate: clip k of K uses the offset (k + 1/2) / K inside each segment instead of 1/2,
  so the K clips interleave (TSN's multi-clip testing); K = 1 gives the uniform rule.
- multi-view with a rate: K windows of `N / fps` seconds spread evenly over the video, first one at the
  start and last one at the end (one window: centred).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch

# seconds: timestamps closer than this are the same instant (they come from exact integer ticks)
TIME_EPS = 1e-6


def _check_counts(num_available: int, num_frames: int) -> None:
    if num_available < 1:
        raise ValueError(f"num_available must be >= 1, got {num_available}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")


def uniform_indices(num_available: int, num_frames: int, offset: Fraction = Fraction(1, 2)) -> np.ndarray:
    """`floor((i + offset) * M / N)` for i in 0..N-1, computed in exact integer arithmetic.

    offset 1/2 picks the middle of each of N equal segments; other offsets in [0, 1) shift every pick by the
    same fraction of a segment (used for interleaved multi-view clips).
    """
    _check_counts(num_available, num_frames)
    offset = Fraction(offset).limit_denominator(1 << 20)
    if not 0 <= offset < 1:
        raise ValueError(f"offset must be in [0, 1), got {offset}")
    p, q = offset.numerator, offset.denominator
    i = np.arange(num_frames, dtype=np.int64)
    return ((i * q + p) * num_available) // (num_frames * q)


def segment_indices(num_available: int, num_frames: int, generator: torch.Generator | None = None) -> np.ndarray:
    """One random frame inside each of N equal segments (TSN training sampling); draws from `generator`.

    Segment i is `[floor(i*M/N), floor((i+1)*M/N))`; with N > M some segments are empty and take their
    first frame `floor(i*M/N)`. Uses torch's RNG so DataLoader workers, which torch seeds per worker, draw
    different frames (numpy's global RNG would repeat across workers).
    """
    _check_counts(num_available, num_frames)
    i = np.arange(num_frames + 1, dtype=np.int64)
    bounds = (i * num_available) // num_frames
    low, length = bounds[:-1], np.diff(bounds)
    draw = torch.rand(num_frames, generator=generator, dtype=torch.float64).numpy()
    return low + np.minimum(np.floor(draw * length).astype(np.int64), np.maximum(length - 1, 0))


def rate_indices(
    times: np.ndarray, fps: float, start: float, num_frames: int | None = None, end: float | None = None
) -> np.ndarray:
    """Positions of the frames on screen at `start + k / fps` for k = 0..num_frames-1 (or while < `end`).

    `times` are the sorted timestamps (seconds) of the available frames. A time before the first frame takes
    the first frame, one after the last frame keeps the last frame (so a clip longer than the video repeats
    its last frame). Give `num_frames`, `end`, or both (then `num_frames` wins).
    """
    times = np.asarray(times, dtype=np.float64)
    if len(times) == 0:
        raise ValueError("rate sampling needs at least one frame")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if num_frames is None:
        if end is None:
            raise ValueError("rate sampling needs num_frames or end")
        num_frames = max(1, math.ceil((end - start) * fps - TIME_EPS))
    elif num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    wanted = start + np.arange(num_frames, dtype=np.float64) / fps
    positions = np.searchsorted(times, wanted + TIME_EPS, side="right") - 1
    return np.clip(positions, 0, len(times) - 1).astype(np.int64)


def interleaved_offsets(num_clips: int) -> list[Fraction]:
    """Offsets (k + 1/2) / K inside each segment for K interleaved uniform clips (K = 1 gives 1/2)."""
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    return [Fraction(2 * k + 1, 2 * num_clips) for k in range(num_clips)]


def clip_starts(start: float, end: float, num_clips: int, span: float) -> np.ndarray:
    """Start times of `num_clips` windows of `span` seconds spread evenly over [start, end].

    The first window starts at `start` and the last ends at `end`; one window is centred. When the video is
    shorter than a window, every window starts at `start`.
    """
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    room = max(end - start - span, 0.0)
    if num_clips == 1:
        return np.array([start + room / 2])
    return start + room * np.arange(num_clips, dtype=np.float64) / (num_clips - 1)


def window_slice(times: np.ndarray, start: float | None, end: float | None) -> tuple[int, int]:
    """[lo, hi) positions of the frames with `start <= time < end` (None: unbounded) in sorted `times`."""
    times = np.asarray(times, dtype=np.float64)
    lo = 0 if start is None else int(np.searchsorted(times, start - TIME_EPS, side="left"))
    hi = len(times) if end is None else int(np.searchsorted(times, end - TIME_EPS, side="left"))
    return lo, max(lo, hi)
