"""Tiny videos for the data tests: 32x32, 8 frames at 8 fps, each telling which video (and frame) it is.

Video k is a flat grey at level `LEVELS[k]` plus `STEP * t` in frame t, so the mean pixel of a decoded frame
names both the video and the frame, whatever the codec does to flat grey.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from video_files import write_video

LEVELS = (20, 72, 124, 176)  # inside YUV's video range [16, 235], with frame ramps that do not overlap
STEP = 6
SIZE = 32
FRAMES = 8
FPS = 8


def write_level_video(path: Path, level: int, frames: int = FRAMES, size: int = SIZE) -> Path:
    """Write a flat video whose frame t has grey level `level + STEP * t`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.empty((frames, size, size, 3), dtype=np.uint8)
    data[:] = (level + STEP * np.arange(frames, dtype=np.int64)).clip(0, 255).astype(np.uint8)[:, None, None, None]
    # the settings of vidslim.data.synth.write_mp4: x264 crf 18, one thread (the same bytes every run)
    return write_video(path, data, FPS, "libx264", "yuv420p", crf="18", preset="veryfast", threads="1")


def which_video(frames: torch.Tensor) -> int:
    """Index into LEVELS of the video a [..., T, H, W, 3] uint8 clip came from (from its first frame)."""
    value = frames.reshape(-1, *frames.shape[-3:])[0].float().mean().item()
    top = STEP * (FRAMES - 1)
    return int(np.argmin([max(level - value, 0, value - level - top) for level in LEVELS]))


def frame_numbers(frames: torch.Tensor, k: int) -> list[int]:
    """Frame numbers t of a [T, H, W, 3] clip of video k, from each frame's mean level."""
    means = frames.float().mean(dim=(1, 2, 3))
    return [round((m - LEVELS[k]) / STEP) for m in means.tolist()]
