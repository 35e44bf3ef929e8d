"""Shared by the jobs tests: a few synthetic videos, one unreadable file, and a tiny saved CLIP."""

from __future__ import annotations

from pathlib import Path

import pytest

import vidslim as vs
from vidslim.data.synth import make_synthetic


@pytest.fixture(scope="package")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 synthetic videos (8 fps, 2 s, 32 px) and broken.mp4 (text, not a video)."""
    folder = tmp_path_factory.mktemp("videos")
    make_synthetic(folder, num_videos=6, fps=8, seconds=2, size=32)
    (folder / "broken.mp4").write_bytes(b"this is not a video\n")
    return folder


@pytest.fixture(scope="package")
def clip_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random clip-tiny taking 4 frames of 32 px, saved as a vidslim checkpoint folder."""
    folder = tmp_path_factory.mktemp("model") / "clip"
    model = vs.create_model("clip-tiny", num_frames=4, image_size=32)
    vs.save_model(model, folder)
    return folder
