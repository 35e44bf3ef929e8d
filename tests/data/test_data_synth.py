"""The synthetic dataset: determinism, what the videos show, the annotation file, the `data synth` command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vidslim.cli import data as data_cli
from vidslim.data.builders import captions, labels
from vidslim.data.classification_formats import parse_labels
from vidslim.data.loading import VideoConfig
from vidslim.data.retrieval_formats import parse_captions
from vidslim.data.synth import (
    CLASSES,
    DIGITS,
    MOTIONS,
    STEPS,
    background,
    glyph,
    glyph_scale,
    make_synthetic,
    plan_video,
    render,
)
from vidslim.errors import ConfigError
from vidslim.io import read_video


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("synth"), num_videos=3, fps=8, seconds=1, size=32, seed=3).parent


def test_font_has_ten_distinct_digits() -> None:
    assert len(DIGITS) == 10 and all(len(d) == 7 and all(len(row) == 5 for row in d) for d in DIGITS)
    masks = {glyph(d, 1).tobytes() for d in range(10)}
    assert len(masks) == 10
    assert glyph(1, 3).shape == (21, 15) and glyph(1, 3)[0:3, 6:9].all()  # the top of the "1" stem, scaled 3x


@pytest.mark.parametrize("size,frames", [(32, 8), (64, 30), (224, 7)])
def test_paths_follow_the_labelled_motion_and_stay_inside(size: int, frames: int) -> None:
    for i in range(40):
        rng = np.random.default_rng([0, i])
        video = plan_video(size, frames, rng)
        pos = video.positions.astype(np.int64)
        h, w = glyph(video.digit, glyph_scale(size)).shape
        assert pos.min() >= 0 and (pos[:, 0] + w <= size).all() and (pos[:, 1] + h <= size).all()
        first, second = (np.array(STEPS[name]) for name in MOTIONS[video.motion])
        half = frames // 2
        moved1 = pos[half - 1] - pos[0]
        moved2 = pos[-1] - pos[half]
        # each half moves along its own direction only, forward
        assert (moved1 * first).sum() > 0 and (moved1 * (1 - np.abs(first))).sum() == 0
        assert (moved2 * second).sum() > 0 and (moved2 * (1 - np.abs(second))).sum() == 0
        steps = np.abs(np.diff(pos, axis=0)).sum(axis=1)
        assert steps.max() <= max(1.0, size / 40) + 1  # "a few pixels per frame"
        first_word = video.caption.split(" moves ")[1]
        assert first_word == CLASSES[video.motion]


def test_background_is_static_and_textured() -> None:
    rng = np.random.default_rng(0)
    backdrop = background(64, rng)
    assert backdrop.shape == (64, 64, 3) and backdrop.dtype == np.uint8 and backdrop.std() > 5
    video = plan_video(64, 10, np.random.default_rng(1))
    frames = render(video, 64, backdrop)
    changed = (frames[1:] != frames[:-1]).any(axis=(0, 3))
    # only pixels the glyph passes over ever change
    h, w = glyph(video.digit, glyph_scale(64)).shape
    covered = np.zeros((64, 64), dtype=bool)
    for x, y in video.positions:
        covered[y : y + h, x : x + w] = True
    assert changed.any() and not (changed & ~covered).any()


def test_make_synthetic_writes_readable_deterministic_data(synth_dir: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (synth_dir / "annotations.jsonl").read_text().splitlines()]
    assert [r["video"] for r in rows] == ["video_0000.mp4", "video_0001.mp4", "video_0002.mp4"]
    assert json.loads((synth_dir / "classes.json").read_text()) == list(CLASSES)
    for row in rows:
        assert row["caption"] == f"a {row['color']} {row['digit']} moves {row['label_name']}"
        assert CLASSES[row["label"]] == row["label_name"] and row["num_frames"] == 8
    clip = read_video(synth_dir / "video_0000.mp4")
    assert clip.frames.shape == (8, 32, 32, 3) and clip.fps == pytest.approx(8.0)
    # the same seed writes the same data; another seed does not
    again = make_synthetic(tmp_path / "again", num_videos=3, fps=8, seconds=1, size=32, seed=3)
    assert again.read_text() == (synth_dir / "annotations.jsonl").read_text()
    # the pictures are a pure function of the seed; the encoded bytes may differ in the last bits (x264 was seen
    # to pick other modes once torch's compile workers had run in the same process), so compare decoded frames
    # up to codec noise
    first = read_video(again.parent / "video_0001.mp4").frames.float()
    second = read_video(synth_dir / "video_0001.mp4").frames.float()
    assert (first - second).abs().mean() < 6.0  # seen up to 2.1; another picture differs by tens of levels
    other = make_synthetic(tmp_path / "other", num_videos=3, fps=8, seconds=1, size=32, seed=4)
    assert other.read_text() != again.read_text()


def test_decoded_video_matches_the_rendering(synth_dir: Path) -> None:
    rng = np.random.default_rng([3, 0])
    backdrop = background(32, rng)
    video = plan_video(32, 8, rng)
    expected = torch.from_numpy(render(video, 32, backdrop)).float()
    decoded = read_video(synth_dir / "video_0000.mp4").frames.float()
    assert (decoded - expected).abs().mean() < 10  # lossy, but the same picture


def test_generic_loaders_read_the_annotations(synth_dir: Path) -> None:
    annotations = synth_dir / "annotations.jsonl"
    assert all((r.caption or "").startswith("a ") for r in parse_captions(annotations))
    assert [r.label for r in parse_labels(annotations)] == [
        json.loads(line)["label"] for line in annotations.read_text().splitlines()]
    cfg = VideoConfig(num_frames=4, size=32)
    ds = labels(annotations, synth_dir, split="test", config=cfg, classes=list(CLASSES))
    assert ds.num_classes == 8 and ds.classes == list(CLASSES) and ds[0]["video"].shape == (4, 32, 32, 3)
    text = captions(annotations, synth_dir, split="train", config=cfg, filter_split=True)
    assert text.num_videos == 3  # none of the 3 is a 5th video
    assert len(parse_captions(annotations, split="test")) == 0


def test_bad_arguments_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="even"):
        make_synthetic(tmp_path, num_videos=1, size=33)
    with pytest.raises(ConfigError, match="num_videos"):
        make_synthetic(tmp_path, num_videos=0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidslim")
    data_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser


def test_cli_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["data", "synth", str(tmp_path / "out"), "--videos", "2", "--fps", "4",
                                 "--seconds", "1", "--size", "32", "--seed", "5", "--json"])
    assert args.func(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["videos"] == 2 and summary["num_classes"] == 8
    assert len(Path(summary["annotations"]).read_text().splitlines()) == 2
    assert read_video(tmp_path / "out" / "video_0001.mp4").frames.shape == (4, 32, 32, 3)
    bare = _parser().parse_args(["data"])
    assert bare.func(bare) == 1 and "synth" in capsys.readouterr().out


@pytest.mark.parametrize(("settings", "match"), [
    ({"fps": 1e9}, "fps must be a frame rate between"),
    ({"fps": float("nan")}, "fps must be a frame rate between"),
    ({"seconds": 1e9}, r"fps 8 x seconds 1e\+09 = 8000000000 frames"),
    ({"seconds": -1.0}, "seconds must be a positive number"),
    ({"size": 31}, "size must be an even number"),
    ({"size": 100_000}, "size must be a whole number of pixels from 16"),
    ({"num_videos": 0}, "num_videos must be a whole number from 1"),
])
def test_settings_that_would_run_for_hours_or_exhaust_memory_are_refused_at_once(tmp_path: Path, settings: dict,
                                                                               match: str) -> None:
    from vidslim.data.synth import make_synthetic
    from vidslim.errors import ConfigError

    values = {"num_videos": 1, "fps": 8.0, "seconds": 1.0, "size": 32, **settings}
    with pytest.raises(ConfigError, match=match):
        make_synthetic(tmp_path / "out", **values)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_the_output_folder_must_be_a_folder(tmp_path: Path) -> None:
    from vidslim.data.synth import make_synthetic
    from vidslim.errors import ConfigError

    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"out_dir .*file: is a file, not a folder"):
        make_synthetic(tmp_path / "file", num_videos=1, seconds=1.0, size=32)
