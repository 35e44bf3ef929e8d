"""Bounds on what one read may ask for (`vidslim.io.limits`): a few characters must not ask for hours or terabytes,
and arithmetic must not fail deep inside (a rate of 1e-9 frames per second rounds to zero)."""

from __future__ import annotations

import math

import pytest

from vidslim.errors import SamplingError
from vidslim.io import read_video
from vidslim.io.limits import MAX_FPS, MAX_FRAMES, MAX_SIZE, MIN_FPS, check_fps, check_frames, check_size


@pytest.mark.parametrize("fps", [1e-9, 0, -1, math.nan, math.inf, 1e5, MAX_FPS * 1.001, "8", True])
def test_rates_outside_the_range_name_the_option(fps: object) -> None:
    with pytest.raises(SamplingError, match=r"--fps must be a frame rate between 0\.01 and 1000 "):
        check_fps(fps, "--fps")


def test_rates_inside_the_range_pass() -> None:
    assert check_fps(MIN_FPS) == MIN_FPS and check_fps(MAX_FPS) == MAX_FPS and check_fps(25) == 25.0


@pytest.mark.parametrize("frames", [0, -3, MAX_FRAMES + 1, 2.5, True, None])
def test_frame_counts_outside_the_range_are_refused(frames: object) -> None:
    with pytest.raises(SamplingError, match=r"data\.frames must be a whole number of frames from 1 to 10000"):
        check_frames(frames, "data.frames")


@pytest.mark.parametrize("size", [0, MAX_SIZE + 1, 10**9, 15.5])
def test_sizes_outside_the_range_are_refused(size: object) -> None:
    with pytest.raises(SamplingError, match="--size must be a whole number of pixels"):
        check_size(size, "--size")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"fps": 1e-9}, "fps must be a frame rate"), ({"fps": 1e9}, "fps must be a frame rate"),
    ({"num_frames": 10**9}, "num_frames must be a whole number"), ({"size": 10**6}, "size must be a whole number"),
])
def test_read_video_refuses_them_before_opening_the_file(tmp_path, kwargs: dict, match: str) -> None:
    with pytest.raises(SamplingError, match=match):  # the file does not exist: the arguments are checked first
        read_video(tmp_path / "missing.mp4", **kwargs)
