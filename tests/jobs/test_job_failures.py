"""Unreadable inputs in the collection jobs: one broken video is skipped and counted, none readable is an error
naming the first failure and the count, a damaged index is one line naming the file, and no progress bar is drawn
on a stderr that is not a terminal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import vidslim as vs
import vidslim.cli.main as cli_main
from vidslim.errors import ConfigError
from vidslim.jobs.failures import NothingReadError, require_some_read, short_reason

pytest.importorskip("pyarrow")


def _broken(folder: Path) -> Path:
    folder.mkdir()
    (folder / "a_empty.mp4").write_bytes(b"")
    (folder / "b_text.mp4").write_text("<html>404</html>\n")
    return folder


def test_short_reason_drops_the_type_and_the_repeated_path() -> None:
    assert short_reason("/v/a.mp4", "VideoDecodeError: /v/a.mp4: the file is empty") == "the file is empty"
    assert short_reason("/v/a\nb.mp4", "OSError: /v/a\\nb.mp4: no such file") == "no such file"
    assert short_reason("/v/a.mp4", "RuntimeError: decoder died") == "RuntimeError: decoder died"


def test_the_rule_counts_only_a_collection_with_nothing_read() -> None:
    require_some_read(0, {})  # nothing given: the source check's business, not this rule's
    require_some_read(2, {"a.mp4": "empty"})
    with pytest.raises(NothingReadError, match=r"none of the 2 video\(s\) could be read: a.mp4: empty$"):
        require_some_read(2, {"b.mp4": "VideoDecodeError: b.mp4: text", "a.mp4": "VideoDecodeError: a.mp4: empty"})


def test_embedding_only_broken_videos_is_an_error_and_the_failures_are_recorded(videos: Path, clip_model: Path,
                                                                               tmp_path: Path) -> None:
    source = _broken(tmp_path / "videos")
    with pytest.raises(NothingReadError) as caught:
        vs.embed_videos(source, clip_model, tmp_path / "index", workers=0)
    message = str(caught.value)
    assert message.startswith("none of the 2 video(s) could be read: ") and "a_empty.mp4: the file is empty" in message
    assert set(caught.value.failed) == {str(source / "a_empty.mp4"), str(source / "b_text.mp4")}
    # the part naming both failures was written: a rerun does not decode them again, and says the same
    assert len(list((tmp_path / "index").glob("part-*.parquet"))) == 1
    with pytest.raises(NothingReadError, match="none of the 2"):
        vs.embed_videos(source, clip_model, tmp_path / "index", workers=0)
    # once one readable video joins, the run succeeds and still names the broken ones
    shutil.copy(videos / "video_0000.mp4", source)
    summary = vs.embed_videos(source, clip_model, tmp_path / "index", workers=0)
    assert summary.embedded == 1 and summary.already_done == 2 and len(summary.failed) == 2


def test_commands_exit_2_with_one_line_when_nothing_is_read(clip_model: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    source = _broken(tmp_path / "videos")
    assert cli_main.main(["embed", str(source), "--model", str(clip_model), "--out", str(tmp_path / "i"),
                          "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vidslim embed: error: none of the 2 video(s) could be read: ")
    head = vs.create_model("videomae-tiny", num_classes=3, num_frames=4, image_size=32)
    vs.save_model(head, tmp_path / "head")
    assert cli_main.main(["classify", str(source / "b_text.mp4"), "--model", str(tmp_path / "head")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none of the 1 video(s) could be read" in err and "b_text.mp4: is a text" in err


def test_a_broken_video_in_a_collection_is_skipped_without_a_bar_on_a_log(videos: Path, clip_model: Path,
                                                                          tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """stderr captured (not a terminal): no progress bar, so a log holds nothing but errors; the table names the
    skipped video on stdout."""
    assert cli_main.main(["embed", str(videos), "--model", str(clip_model), "--out", str(tmp_path / "i"),
                          "--workers", "0", "--no-flops"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "6 videos embedded" in captured.out and f"skipped {videos / 'broken.mp4'}: is a text file" in captured.out


def test_a_damaged_index_is_one_line_naming_the_file(videos: Path, clip_model: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    vs.embed_videos(sorted(str(p) for p in videos.glob("video_*.mp4"))[:2], clip_model, index, workers=0)
    part = next(index.glob("part-*.parquet"))
    part.write_bytes(part.read_bytes()[:100])
    for run in (lambda: vs.VideoIndex(index), lambda: vs.embed_videos(videos, clip_model, index, workers=0)):
        with pytest.raises(ConfigError, match=f"{part.name}: damaged index part .*delete it"):
            run()
    (index / "index.json").write_text(json.dumps({"model": "x"})[:-3])
    with pytest.raises(ConfigError, match=r"index.json: damaged index description"):
        vs.VideoIndex(index)
