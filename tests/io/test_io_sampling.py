"""Frame selection rules, checked against indices worked out by hand (no video involved)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from vidslim.io import sampling as smp


def test_uniform_takes_segment_middles():
    # 50 frames, 8 picks: floor((i + 0.5) * 6.25) = 3.125, 9.375, 15.625, 21.875, 28.125, ...
    assert smp.uniform_indices(50, 8).tolist() == [3, 9, 15, 21, 28, 34, 40, 46]
    # 10 frames, 5 picks: segments of 2, middles at 1, 3, 5, 7, 9
    assert smp.uniform_indices(10, 5).tolist() == [1, 3, 5, 7, 9]
    assert smp.uniform_indices(7, 7).tolist() == list(range(7))
    assert smp.uniform_indices(1, 1).tolist() == [0]


def test_uniform_repeats_evenly_when_asking_for_more_than_available():
    # 3 frames, 6 picks: floor((i + 0.5) / 2) = 0, 0, 1, 1, 2, 2
    assert smp.uniform_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]
    picks = smp.uniform_indices(4, 10)
    counts = np.bincount(picks, minlength=4)
    assert counts.min() >= 2 and counts.max() <= 3 and counts.sum() == 10


def test_uniform_offset_shifts_inside_segments():
    # 20 frames, 4 segments of 5: offset 1/4 -> 1.25 -> 1, 6, 11, 16; offset 3/4 -> 3.75 -> 3, 8, 13, 18
    assert smp.uniform_indices(20, 4, Fraction(1, 4)).tolist() == [1, 6, 11, 16]
    assert smp.uniform_indices(20, 4, Fraction(3, 4)).tolist() == [3, 8, 13, 18]
    assert smp.uniform_indices(20, 4, Fraction(0)).tolist() == [0, 5, 10, 15]
    with pytest.raises(ValueError, match="offset"):
        smp.uniform_indices(20, 4, Fraction(1))


def test_interleaved_offsets():
    assert smp.interleaved_offsets(1) == [Fraction(1, 2)]
    assert smp.interleaved_offsets(2) == [Fraction(1, 4), Fraction(3, 4)]
    assert smp.interleaved_offsets(3) == [Fraction(1, 6), Fraction(1, 2), Fraction(5, 6)]


def test_segments_draw_one_frame_inside_each_segment():
    # 50 frames, 8 segments: bounds floor(i * 50 / 8) = 0, 6, 12, 18, 25, 31, 37, 43, 50
    bounds = [0, 6, 12, 18, 25, 31, 37, 43, 50]
    seen = set()
    for seed in range(40):
        picks = smp.segment_indices(50, 8, torch.Generator().manual_seed(seed))
        assert all(bounds[i] <= p < bounds[i + 1] for i, p in enumerate(picks.tolist()))
        seen.add(tuple(picks.tolist()))
    assert len(seen) > 30  # genuinely random
    a = smp.segment_indices(50, 8, torch.Generator().manual_seed(7))
    b = smp.segment_indices(50, 8, torch.Generator().manual_seed(7))
    assert a.tolist() == b.tolist()


def test_segments_with_more_picks_than_frames_take_segment_starts():
    # 3 frames, 6 segments: bounds 0, 0, 1, 1, 2, 2, 3 -> empty segments take their start
    picks = smp.segment_indices(3, 6, torch.Generator().manual_seed(0))
    assert picks.tolist() == [0, 0, 1, 1, 2, 2]


def test_rate_indices_pick_the_frame_on_screen():
    times = np.arange(50) / 25  # 2 s at 25 fps
    assert smp.rate_indices(times, 5, 0.0, end=2.0).tolist() == list(range(0, 50, 5))
    # 10 fps: times 0.0, 0.1, ... -> frames floor(k * 2.5)
    assert smp.rate_indices(times, 10, 0.0, end=2.0).tolist() == [int(k * 2.5) for k in range(20)]
    # 50 fps from a 25 fps source: every frame twice
    assert smp.rate_indices(times, 50, 0.0, end=2.0).tolist() == [k // 2 for k in range(100)]
    # 4 frames at 10 fps from 1.0 s: 25, 27 (1.1 s -> 27.5), 30, 32
    assert smp.rate_indices(times, 10, 1.0, num_frames=4).tolist() == [25, 27, 30, 32]
    # past the end: the last frame repeats
    assert smp.rate_indices(times, 1, 0.0, num_frames=4).tolist() == [0, 25, 49, 49]


def test_rate_indices_with_variable_frame_rate():
    times = np.array([0.0, 0.1, 0.15, 0.5, 0.9])
    # instants 0, 0.25, 0.5, 0.75 -> on screen: 0.0, 0.15, 0.5, 0.5
    assert smp.rate_indices(times, 4, 0.0, num_frames=4).tolist() == [0, 2, 3, 3]


def test_clip_starts_spread_over_the_window():
    assert smp.clip_starts(0.0, 10.0, 3, 2.0).tolist() == [0.0, 4.0, 8.0]
    assert smp.clip_starts(0.0, 10.0, 1, 2.0).tolist() == [4.0]  # centred
    assert smp.clip_starts(1.0, 2.0, 2, 5.0).tolist() == [1.0, 1.0]  # shorter than a clip


def test_window_slice_is_half_open():
    times = np.arange(10) / 10  # 0.0 .. 0.9
    assert smp.window_slice(times, 0.2, 0.5) == (2, 5)
    assert smp.window_slice(times, None, None) == (0, 10)
    assert smp.window_slice(times, 0.25, 0.28) == (3, 3)  # empty: no frame in between


@pytest.mark.parametrize("call", [
    lambda: smp.uniform_indices(0, 3),
    lambda: smp.uniform_indices(5, 0),
    lambda: smp.segment_indices(5, 0),
    lambda: smp.rate_indices(np.arange(3.0), 0, 0.0, 2),
    lambda: smp.clip_starts(0, 1, 0, 1),
])
def test_bad_counts_raise(call):
    with pytest.raises(ValueError):
        call()
