"""read_windows: the windows of one video in one decoding pass, frame for frame what reading each window gives."""

from __future__ import annotations

import pytest
import torch

from vidslim.errors import SamplingError
from vidslim.io import read_video, read_windows


def test_each_window_holds_the_frames_its_own_read_gives(mp4, ids):
    # 50 frames at 25 fps (2 s); consecutive, overlapping, last-aligned and between-frames windows
    spans = [(0.0, 0.8), (0.8, 1.6), (1.2, 2.0), (0.5, 1.5), (1.99, 2.0)]
    clips = read_windows(mp4, spans, num_frames=4, size=32)
    for (start, end), clip in zip(spans, clips, strict=True):
        alone = read_video(mp4, num_frames=4, start=start, end=end, size=32)
        assert torch.equal(clip.frames, alone.frames)
        assert torch.equal(clip.timestamps, alone.timestamps) and torch.equal(clip.indices, alone.indices)
        assert clip.repeated == alone.repeated
    # hand-derived: window [0.8, 1.6) holds frames 20..39, picks floor((i + 1/2) * 20 / 4) = 2, 7, 12, 17 of it
    assert ids(clips[1].frames) == [22, 27, 32, 37]
    # [1.99, 2.0) falls between frames 49 (1.96 s) and the end: the frame on screen, repeated
    assert ids(clips[4].frames) == [49] * 4 and clips[4].repeated


def test_one_pass_decodes_each_frame_at_most_once(make_video, ids):
    # one keyframe (no scene-cut ones): reading a window alone decodes from frame 0 up to it
    path = make_video("one_gop.mp4", num_frames=100, gop=100, options={"x264-params": "scenecut=0"})
    spans = [(k * 0.8, (k + 1) * 0.8) for k in range(5)]
    clips = read_windows(path, spans, num_frames=4)
    alone = [read_video(path, num_frames=4, start=s, end=e) for s, e in spans]
    assert [ids(c.frames) for c in clips] == [ids(a.frames) for a in alone]
    assert clips[0].num_decoded <= 100  # one sweep over the stream
    assert sum(a.num_decoded for a in alone) > 150  # window by window: from the start again for every window


def test_bad_windows_are_errors(mp4):
    with pytest.raises(SamplingError, match="at least one"):
        read_windows(mp4, [], num_frames=4)
    with pytest.raises(SamplingError, match="must be after start"):
        read_windows(mp4, [(0.0, 1.0), (1.5, 1.0)], num_frames=4)
    with pytest.raises(SamplingError, match="past the end"):
        read_windows(mp4, [(0.0, 1.0), (3.0, 4.0)], num_frames=4)
    with pytest.raises(SamplingError, match="num_frames"):
        read_windows(mp4, [(0.0, 1.0)], num_frames=0)
