"""Fixtures for the data tests; the tiny-video helpers live in data_videos.py (importable by the tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from data_videos import LEVELS, write_level_video


@pytest.fixture
def level_videos(tmp_path: Path) -> Callable[..., Path]:
    """Factory: level_videos("name.mp4", k) writes video k (grey level LEVELS[k]) under tmp_path/videos."""

    def make(name: str, k: int, **kwargs) -> Path:
        return write_level_video(tmp_path / "videos" / name, LEVELS[k], **kwargs)

    return make
