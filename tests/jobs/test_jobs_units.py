"""Windows, token-budget batches and video sources, against hand-derived expectations."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidslim.errors import ConfigError
from vidslim.jobs.budget import TokenBudget
from vidslim.jobs.sources import list_videos
from vidslim.jobs.windows import WindowPlan


def test_whole_video_is_one_window() -> None:
    assert WindowPlan().cut(7.3) == [(0.0, 7.3)]


def test_consecutive_windows_end_with_one_aligned_to_the_end() -> None:
    assert WindowPlan(2.0).cut(5.0) == [(0.0, 2.0), (2.0, 4.0), (3.0, 5.0)]
    assert WindowPlan(2.0).cut(4.0) == [(0.0, 2.0), (2.0, 4.0)]
    assert WindowPlan(2.0).cut(1.5) == [(0.0, 1.5)]  # shorter than a window: the whole video


def test_strided_windows_overlap() -> None:
    assert WindowPlan(2.0, 1.0).cut(4.0) == [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0)]


@pytest.mark.parametrize("kwargs", [{"length": 0.0}, {"length": -1.0}, {"stride": 1.0}, {"length": float("nan")}])
def test_bad_window_settings_are_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        WindowPlan(**kwargs)


def test_token_budget_closes_a_batch_before_it_would_overflow() -> None:
    batcher: TokenBudget[str] = TokenBudget(100)
    assert batcher.add("a", 40) == [] and batcher.add("b", 50) == []
    assert batcher.add("c", 30) == [["a", "b"]]  # 40 + 50 + 30 > 100: c starts the next batch
    assert batcher.add("d", 70) == [["c", "d"]]  # exactly 100: full
    assert batcher.add("e", 250) == [["e"]]  # larger than the budget: alone
    assert batcher.flush() == []


def test_fixed_batch_counts_windows() -> None:
    batcher: TokenBudget[int] = TokenBudget(None, 2)
    assert [batcher.add(i, 1000 * i) for i in range(5)] == [[], [[0, 1]], [], [[2, 3]], []]
    assert batcher.flush() == [4]
    with pytest.raises(ValueError):
        TokenBudget(None, None)


def test_sources_folder_list_and_glob(tmp_path: Path) -> None:
    for name in ("b.mp4", "a.MP4", "sub/c.mkv", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    expected = [str(tmp_path / "a.MP4"), str(tmp_path / "b.mp4"), str(tmp_path / "sub/c.mkv")]
    assert list_videos(tmp_path) == expected
    listing = tmp_path / "list.txt"
    listing.write_text("b.mp4\n# a comment\n\nsub/c.mkv\nb.mp4\n")
    assert list_videos(listing) == [str(tmp_path / "b.mp4"), str(tmp_path / "sub/c.mkv")]
    assert list_videos(str(tmp_path / "*.mp4")) == [str(tmp_path / "b.mp4")]
    with pytest.raises(ConfigError, match="no such folder"):
        list_videos(tmp_path / "missing")


@pytest.mark.parametrize(("option", "value"), [("batch_size", 0), ("token_budget", 0), ("token_budget", -5),
                                               ("workers", -1), ("part_videos", 0)])
def test_embed_refuses_counts_below_one_before_writing(tmp_path: Path, option: str, value: int) -> None:
    from vidslim.jobs.embed import embed_videos

    with pytest.raises(ConfigError, match=f"{option} must be >= "):  # 0 is not silently the default
        embed_videos(tmp_path / "videos", "clip-tiny", tmp_path / "index", **{option: value})
    assert not (tmp_path / "index").exists()
