"""read_video / read_clips on videos written by the fixtures: which frames, when, how big, how cheaply."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from vidslim.errors import SamplingError, VideoDecodeError
from vidslim.io import probe, read_clips, read_video


def test_all_frames_in_order(mp4, ids):
    clip = read_video(mp4)
    assert clip.frames.shape == (50, 64, 80, 3) and clip.frames.dtype == torch.uint8
    assert ids(clip.frames) == list(range(50))
    assert clip.indices.tolist() == list(range(50))
    assert torch.allclose(clip.timestamps, torch.arange(50, dtype=torch.float64) / 25)
    assert clip.fps == 25.0 and not clip.repeated and len(clip) == 50 and clip.size == (64, 80)


def test_uniform_sampling_exact_frames(mp4, ids):
    clip = read_video(mp4, num_frames=8)
    expected = [3, 9, 15, 21, 28, 34, 40, 46]  # floor((i + 0.5) * 50 / 8)
    assert clip.indices.tolist() == expected
    assert ids(clip.frames) == expected
    assert clip.timestamps.tolist() == pytest.approx([i / 25 for i in expected])
    assert clip.num_substituted == 0 and not clip.repeated


def test_more_frames_than_the_video_has_repeat_evenly(make_video, ids):
    path = make_video("short.mp4", num_frames=5)
    clip = read_video(path, num_frames=12)
    # floor((i + 0.5) * 5 / 12) = floor(0.21, 0.63, 1.04, 1.46, 1.88, 2.29, 2.71, 3.13, 3.54, 3.96, 4.38, 4.79)
    expected = [0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4]
    assert clip.repeated and ids(clip.frames) == expected and clip.indices.tolist() == expected


def test_random_segments_are_inside_their_segment_and_seeded(mp4, ids):
    bounds = [0, 6, 12, 18, 25, 31, 37, 43, 50]  # floor(i * 50 / 8)
    a = read_video(mp4, num_frames=8, sampling="random", generator=torch.Generator().manual_seed(3))
    b = read_video(mp4, num_frames=8, sampling="random", generator=torch.Generator().manual_seed(3))
    picks = a.indices.tolist()
    assert all(bounds[i] <= p < bounds[i + 1] for i, p in enumerate(picks))
    assert ids(a.frames) == picks and b.indices.tolist() == picks
    draws = {tuple(read_video(mp4, num_frames=8, sampling="random").indices.tolist()) for _ in range(6)}
    assert len(draws) > 1


def test_rate_sampling(mp4, ids):
    assert ids(read_video(mp4, fps=5).frames) == list(range(0, 50, 5))
    assert ids(read_video(mp4, fps=10).frames) == [int(k * 2.5) for k in range(20)]
    doubled = read_video(mp4, fps=50)
    assert doubled.repeated and ids(doubled.frames) == [k // 2 for k in range(100)]
    # 4 frames at 10 fps from 1 s: instants 1.0, 1.1, 1.2, 1.3 -> frames 25, 27, 30, 32
    clip = read_video(mp4, fps=10, num_frames=4, start=1.0)
    assert ids(clip.frames) == [25, 27, 30, 32] and clip.indices.tolist() == [25, 27, 30, 32]


def test_rate_sampling_random_start_stays_in_window(mp4, ids):
    for seed in range(5):
        clip = read_video(mp4, fps=5, num_frames=4, sampling="random", generator=torch.Generator().manual_seed(seed))
        got = ids(clip.frames)
        # 4 frames 0.2 s apart inside 2 s: consecutive picks 5 frames apart, last one <= 49
        assert np.diff(got).tolist() == [5, 5, 5] and got[-1] <= 49


def test_window_is_read_by_seeking(long_mp4, ids):
    clip = read_video(long_mp4, start=15.0, end=16.0)
    assert ids(clip.frames) == list(range(375, 400))
    assert clip.indices.tolist() == list(range(375, 400))
    assert float(clip.timestamps.min()) >= 15.0 and float(clip.timestamps.max()) < 16.0
    # a keyframe every 25 frames: the decoder only saw about one GOP, not the 375 frames before
    assert clip.num_decoded <= 60
    assert read_video(long_mp4, end=16.0).num_decoded >= 400


def test_sparse_picks_over_a_long_video_skip_the_gops_between(long_mp4, ids):
    clip = read_video(long_mp4, num_frames=4)
    expected = [62, 187, 312, 437]  # floor((i + 0.5) * 125)
    assert ids(clip.frames) == expected
    assert clip.num_decoded <= 4 * 25 + 8  # at most a GOP per pick, far below the 500 frames


def test_window_plus_uniform(long_mp4, ids):
    clip = read_video(long_mp4, start=15.0, end=16.0, num_frames=5)
    assert ids(clip.frames) == [377, 382, 387, 392, 397]  # 375 + floor((i + 0.5) * 5)


def test_window_between_two_frames_gives_the_frame_on_screen(mp4, ids):
    clip = read_video(mp4, start=0.05, end=0.07)  # frames at 0.04 and 0.08
    assert ids(clip.frames) == [1]


def test_end_past_the_video_reads_to_its_end(mp4, ids):
    assert ids(read_video(mp4, start=1.8, end=100.0).frames) == [45, 46, 47, 48, 49]


def test_start_past_the_end_is_an_error_naming_the_file(mp4):
    with pytest.raises(SamplingError, match=r"clip\.mp4.*start=5.0 s is past the end of the video \(2\.000 s\)"):
        read_video(mp4, start=5.0)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"num_frames": 0}, "num_frames"),
    ({"fps": -1}, "fps"),
    ({"start": -1}, "start"),
    ({"start": 1.0, "end": 0.5}, "end"),
    ({"size": 0}, "size"),
    ({"size": (3,)}, "size"),
    ({"crop": "left"}, "crop"),
    ({"sampling": "dense"}, "sampling"),
])
def test_bad_arguments_name_themselves(mp4, kwargs, match):
    with pytest.raises(SamplingError, match=match):
        read_video(mp4, **kwargs)


def test_resize_on_decode_sizes(mp4, ids):
    assert read_video(mp4, num_frames=2, size=32).frames.shape == (2, 32, 32, 3)
    assert read_video(mp4, num_frames=2, size=32, crop=None).frames.shape == (2, 32, 40, 3)
    assert read_video(mp4, num_frames=2, size=(20, 50)).frames.shape == (2, 20, 50, 3)
    assert read_video(mp4, num_frames=2, size=128, crop=None).frames.shape == (2, 128, 160, 3)
    assert ids(read_video(mp4, num_frames=3, size=32).frames) == [8, 25, 41]


def _noise(i: int, h: int, w: int) -> np.ndarray:
    return np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_center_and_random_crops_cut_the_resized_frame(make_video):
    mp4 = make_video("noise.mp4", num_frames=6, frame=_noise)
    full = read_video(mp4, num_frames=3, size=32, crop=None).frames  # [3, 32, 40, 3]
    center = read_video(mp4, num_frames=3, size=32).frames
    assert torch.equal(center, full[:, :, 4:36])  # (40 - 32) // 2 = 4
    lefts = set()
    for seed in range(12):
        rand = read_video(mp4, num_frames=3, size=32, crop="random", generator=torch.Generator().manual_seed(seed))
        matches = [x for x in range(9) if torch.equal(rand.frames, full[:, :, x : x + 32])]
        assert len(matches) == 1  # one crop, the same for all frames
        lefts.add(matches[0])
    assert len(lefts) > 2


def test_odd_sizes_decode(make_video, ids):
    for name, codec, pix_fmt in [("odd.mkv", "ffv1", "yuv444p"), ("odd.mp4", "libx264", "yuv444p"),
                                 ("odd.avi", "mjpeg", "yuvj444p")]:
        path = make_video(name, width=175, height=143, codec=codec, pix_fmt=pix_fmt, num_frames=12)
        clip = read_video(path)
        assert clip.frames.shape == (12, 143, 175, 3), name
        assert ids(clip.frames) == list(range(12)), name
        assert read_video(path, num_frames=2, size=(71, 33)).frames.shape == (2, 71, 33, 3)


def test_tiny_video_decodes(make_video):
    def gray(i: int, h: int, w: int) -> np.ndarray:
        return np.full((h, w, 3), 20 + 10 * i, dtype=np.uint8)

    clip = read_video(make_video("tiny.mp4", width=16, height=16, num_frames=20, frame=gray))
    assert clip.frames.shape == (20, 16, 16, 3)
    levels = clip.frames.double().mean(dim=(1, 2, 3))
    assert torch.allclose(levels, 20 + 10 * torch.arange(20, dtype=torch.float64), atol=3)


@pytest.mark.parametrize(("rotation", "quarter"), [(90, 1), (-90, -1), (180, 2)])
def test_rotated_video_comes_out_upright(make_video, rotation, quarter):
    plain = read_video(make_video("plain.mp4", num_frames=4)).frames
    turned = read_video(make_video("turned.mp4", num_frames=4, rotation=rotation))
    expected = torch.from_numpy(np.ascontiguousarray(np.rot90(plain.numpy(), quarter, axes=(1, 2))))
    assert torch.equal(turned.frames, expected)
    if rotation != 180:
        resized = read_video(make_video("t2.mp4", num_frames=4, rotation=rotation), size=32, crop=None)
        assert resized.frames.shape == (4, 40, 32, 3)  # upright: portrait 64 x 80 -> 32 x 40


@pytest.mark.parametrize(("name", "options", "most_decoded"), [
    ("long.mkv", {}, 40),
    ("long.ts", {}, 40),  # MPEG-TS seeks land after the asked time: checked and backed off
    ("long.avi", {"codec": "mjpeg", "pix_fmt": "yuvj420p"}, 12),  # every frame a keyframe
])
def test_windows_in_other_containers(make_video, ids, name, options, most_decoded):
    path = make_video(name, num_frames=150, gop=25, **options)
    clip = read_video(path, start=4.0, end=4.4)
    assert ids(clip.frames) == list(range(100, 110)) and clip.indices.tolist() == list(range(100, 110))
    assert clip.num_decoded <= most_decoded
    assert ids(read_video(path, num_frames=5).frames) == [15, 45, 75, 105, 135]


def test_variable_frame_rate(make_vfr_video, ids):
    times_ms = [0, 100, 150, 500, 900, 1000, 1040, 1300, 1700, 2000]
    path = make_vfr_video("vfr.mp4", times_ms)
    clip = read_video(path)
    assert ids(clip.frames) == list(range(10))
    assert clip.timestamps.tolist() == pytest.approx([t / 1000 for t in times_ms])
    # 4 fps: instants 0, .25, .5, ... 2.0 -> frames on screen 0, 2 (0.15), 3, 3, 5, 6 (1.04), 7, 8, 9
    assert ids(read_video(path, fps=4, end=2.1).frames) == [0, 2, 3, 3, 5, 6, 7, 8, 9]
    window = read_video(path, start=0.9, end=1.5)
    assert ids(window.frames) == [4, 5, 6, 7] and window.indices.tolist() == [4, 5, 6, 7]


def test_raw_h264_without_timestamps(make_video, ids):
    path = make_video("raw.h264", num_frames=30)
    clip = read_video(path, num_frames=4)
    assert ids(clip.frames) == [3, 11, 18, 26]  # floor((i + 0.5) * 7.5)
    assert clip.timestamps.tolist() == pytest.approx([3 / 25, 11 / 25, 18 / 25, 26 / 25])
    assert ids(read_video(path, start=1.0).frames) == [25, 26, 27, 28, 29]


def test_multi_clip_at_a_rate(mp4, ids):
    clips = read_clips(mp4, num_clips=3, num_frames=4, fps=5)
    # clips of 0.8 s spread over 2 s: starts 0, 0.6, 1.2
    assert [ids(c.frames) for c in clips] == [[0, 5, 10, 15], [15, 20, 25, 30], [30, 35, 40, 45]]
    assert [c.indices.tolist() for c in clips] == [[0, 5, 10, 15], [15, 20, 25, 30], [30, 35, 40, 45]]
    (centred,) = read_clips(mp4, num_clips=1, num_frames=4, fps=5)
    assert ids(centred.frames) == [15, 20, 25, 30]  # starts at (2 - 0.8) / 2 = 0.6 s


def test_multi_clip_interleaved(mp4, ids):
    clips = read_clips(mp4, num_clips=2, num_frames=5, size=32)
    # offsets 1/4 and 3/4 inside segments of 10 frames
    assert [ids(c.frames) for c in clips] == [[2, 12, 22, 32, 42], [7, 17, 27, 37, 47]]
    assert all(c.frames.shape == (5, 32, 32, 3) for c in clips)
    assert clips[0].num_decoded == clips[1].num_decoded  # one decoding pass for both


@pytest.mark.parametrize("percent", [20, 50, 90])
def test_a_truncated_faststart_mp4_is_an_error_once_a_read_reaches_the_cut(make_video, tmp_path, percent):
    """The index at the front still lists every frame, so reading on past the cut would quietly give fewer frames
    than the header promises (or repeat the last one): `probe` and a read that reaches the cut say the file is
    truncated."""
    full = make_video("fs.mp4", num_frames=30, gop=5, frame=_noise, container_options={"movflags": "faststart"})
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * percent // 100])
    assert probe(full).num_frames == 30
    reads = (lambda: probe(cut), lambda: read_video(cut), lambda: read_video(cut, num_frames=8),
             lambda: read_video(cut, start=0.6))
    for read in reads:
        with pytest.raises(VideoDecodeError, match=r"cut\.mp4: truncated: the file ends after (about )?\d+ of the 30 "):
            read()
    if percent == 90:  # a window well before the cut is intact, frame for frame
        window = read_video(cut, start=0.0, end=0.2)
        assert torch.equal(window.frames, read_video(full, start=0.0, end=0.2).frames)


def test_memory_holds_only_the_sampled_frames(long_mp4):
    tracemalloc.start()
    try:
        clip = read_video(long_mp4, num_frames=4, size=32)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full_res_rgb = 500 * 64 * 80 * 3
    assert clip.frames.numel() == 4 * 32 * 32 * 3
    assert peak < full_res_rgb / 4
