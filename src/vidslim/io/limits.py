"""Bounds on what one request may ask of the decoder: frame rate, frames per clip, frame size.

A few characters of input (`--fps 1e9`, `data.frames=10000000`) must not ask for hours of work or more memory
than a machine has, nor reach arithmetic that only fails deep inside (a rate of 1e-9 frames per second rounds
to zero). Every reader and command that takes these numbers checks them here, at the input, and the error names
the option as the caller spells it (`name`), the value, the range and what to pass instead.
"""

from __future__ import annotations

import math
import numbers

from vidslim.errors import SamplingError

#: frames per second: one frame every 100 s at the least; high-speed cameras record up to about 1000
MIN_FPS, MAX_FPS = 0.01, 1000.0
#: frames in one clip (a window, a training clip): 10,000 frames of 224 px are 1.5 GB of uint8
MAX_FRAMES = 10_000
#: pixels on a side of an output frame (8K video is 7680 wide)
MAX_SIZE = 8192


def check_fps(fps: object, name: str = "fps") -> float:
    """`fps` as a float in [MIN_FPS, MAX_FPS]; otherwise `SamplingError` naming `name`."""
    ok = isinstance(fps, numbers.Real) and not isinstance(fps, bool) and math.isfinite(float(fps))
    if not ok or not MIN_FPS <= float(fps) <= MAX_FPS:  # type: ignore[arg-type]
        raise SamplingError(f"{name} must be a frame rate between {MIN_FPS:g} and {MAX_FPS:g} frames per second, "
                            f"got {fps!r}")
    return float(fps)  # type: ignore[arg-type]


def check_frames(frames: object, name: str = "num_frames") -> int:
    """`frames` as an int in [1, MAX_FRAMES]; otherwise `SamplingError` naming `name`."""
    if not isinstance(frames, numbers.Integral) or isinstance(frames, bool) or not 1 <= int(frames) <= MAX_FRAMES:
        raise SamplingError(f"{name} must be a whole number of frames from 1 to {MAX_FRAMES}, got {frames!r}")
    return int(frames)


def check_size(size: object, name: str = "size", minimum: int = 1) -> int:
    """`size` (pixels on a side) as an int in [minimum, MAX_SIZE]; otherwise `SamplingError` naming `name`."""
    if not isinstance(size, numbers.Integral) or isinstance(size, bool) or not minimum <= int(size) <= MAX_SIZE:
        raise SamplingError(f"{name} must be a whole number of pixels from {minimum} to {MAX_SIZE}, got {size!r}")
    return int(size)
