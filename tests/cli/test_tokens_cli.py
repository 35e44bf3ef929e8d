"""`vidslim tokens` on tiny videos whose RLT masks are known by construction (see conftest.py).

Hand derivation (16-frame windows, tubelets of 2 frames, so T' = 8 slots; 16 x 16 patches of 64 x 64 frames, so
a 4 x 4 grid and 128 tokens per window). Slot k >= 1 compares frame 2k+1 with frame 2k-2, i.e. the square's
column in tubelet k with its column in tubelet k-1. Where they differ, the two cells it left and entered change
and are kept; the background never changes. At 8 fps the window's path is PATH = 0,1,2,3,3,2,1,0: it moves at
k = 1, 2, 3, 5, 6, 7 and stays at k = 4, so a window keeps 16 (slot 0) + 6 x 2 = 28 tokens.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import av
import pytest
from PIL import Image

import vidslim.bench.token_count as counting

TOKENS_PER_WINDOW = 8 * 4 * 4
KEPT_PER_WINDOW = 16 + 6 * 2
REQUIRED = {"method", "tau", "frames", "fps", "clips", "tokens_total", "tokens_kept", "kept_fraction"}

Run = Callable[..., tuple[int, str, str]]


def as_json(run: Run, *args: str) -> dict:
    status, out, err = run("tokens", *args, "--size", "64", "--json")
    assert status == 0, err
    return json.loads(out)


def test_dense_keeps_every_token(vidslim: Run, square_video: Path) -> None:
    doc = as_json(vidslim, square_video, "--method", "dense")
    assert doc["tau"] is None and doc["method"] == "dense"
    assert [c["tokens_kept"] for c in doc["clips"]] == [TOKENS_PER_WINDOW] * 2
    assert doc["tokens_kept"] == doc["tokens_total"] == 2 * TOKENS_PER_WINDOW
    assert doc["kept_fraction"] == 1.0


def test_rlt_keeps_what_the_construction_says(vidslim: Run, square_video: Path) -> None:
    doc = as_json(vidslim, square_video, "--method", "rlt", "--tau", "0.1")
    assert [c["tokens_kept"] for c in doc["clips"]] == [KEPT_PER_WINDOW] * 2
    assert doc["tau"] == 0.1 and doc["fps"] == 8.0 and doc["frames"] == 16
    assert doc["frames_left_out"] == 8  # 40 frames = 2 windows + 8


def test_json_schema_and_arithmetic(vidslim: Run, square_video: Path) -> None:
    doc = as_json(vidslim, square_video, "--method", "rlt")
    assert set(doc) >= REQUIRED
    assert [c["start_s"] for c in doc["clips"]] == pytest.approx([0.0, 2.0])  # 16 frames at 8 fps
    assert all(set(c) == {"start_s", "tokens_total", "tokens_kept"} for c in doc["clips"])
    assert doc["tokens_total"] == sum(c["tokens_total"] for c in doc["clips"])
    assert doc["tokens_kept"] == sum(c["tokens_kept"] for c in doc["clips"])
    assert doc["kept_fraction"] == pytest.approx(doc["tokens_kept"] / doc["tokens_total"])


def test_half_rate_sees_rlt_blind_spot(vidslim: Run, square_video: Path) -> None:
    """At 4 fps tubelet k holds source tubelets 2k and 2k+1: slot k compares PATH[(2k+1) % 8] with
    PATH[(2k-2) % 8], equal for even k (the square left and came back between the compared frames, which RLT
    never looks at), so only k = 1, 3, 5, 7 keep 2 cells: 16 + 4 x 2 = 24 tokens; 20 frames = 1 window + 4."""
    doc = as_json(vidslim, square_video, "--method", "rlt", "--fps", "4")
    assert [c["tokens_kept"] for c in doc["clips"]] == [24]
    assert doc["fps"] == 4.0 and doc["frames_left_out"] == 4


def test_last_pad_repeats_the_last_frame(vidslim: Run, square_video: Path) -> None:
    """The 8 frames after two windows are tubelets 16..19 (columns 0, 1, 2, 3) then 4 repeats of frame 39
    (column 3): moves at k = 1, 2, 3 only, so 16 + 3 x 2 = 22 tokens."""
    doc = as_json(vidslim, square_video, "--method", "rlt", "--last", "pad")
    assert [c["tokens_kept"] for c in doc["clips"]] == [KEPT_PER_WINDOW, KEPT_PER_WINDOW, 22]
    assert doc["frames_padded"] == 8 and doc["frames_left_out"] == 0
    assert doc["clips"][2]["start_s"] == pytest.approx(4.0)


@pytest.mark.parametrize(("keep", "kept"), [(0.5, 64), (0.3, 38)])  # round(0.3 * 128) = round(38.4)
def test_random_keeps_round_keep_n(vidslim: Run, square_video: Path, keep: float, kept: int) -> None:
    doc = as_json(vidslim, square_video, "--method", "random", "--keep", str(keep), "--seed", "3")
    assert [c["tokens_kept"] for c in doc["clips"]] == [kept, kept]
    assert doc["tau"] is None and doc["keep"] == keep


def test_chunked_reading_gives_the_same_windows(
    vidslim: Run, make_square_video: Callable[[int], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One window per read_video call: the same counts, including a video that ends exactly on a chunk end."""
    for frames in (40, 32):
        video = make_square_video(frames)
        whole = as_json(vidslim, video, "--method", "rlt")
        with monkeypatch.context() as patch:
            patch.setattr(counting, "CHUNK_WINDOWS", 1)
            chunked = as_json(vidslim, video, "--method", "rlt")
        assert chunked["clips"] == whole["clips"]
        assert chunked["frames_left_out"] == whole["frames_left_out"] == frames - 32


def test_table_output(vidslim: Run, square_video: Path) -> None:
    status, out, err = vidslim("tokens", square_video, "--size", "64")
    assert status == 0 and err == ""  # no progress bar when stderr is not a terminal
    lines = out.splitlines()
    assert lines[2].split() == ["0", "0.000", "128", "28", "21.9%"]
    assert lines[4].split() == ["total", "2", "windows", "256", "56", "21.9%"]
    assert "8 frames after the last full window" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--frames", "15"), "--frames 15"),
        (("--size", "60"), "--size 60"),
        (("--keep", "0", "--method", "random"), "--keep"),
        (("--frames", "64"), "do not fill one window"),
        (("--viz", "out.jpg"), "--viz"),
    ],
)
def test_bad_options_are_one_line_exit_2(vidslim: Run, square_video: Path, args: tuple[str, ...],
                                         needle: str) -> None:
    status, out, err = vidslim("tokens", square_video, "--size", "64", *args)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err and err.startswith("vidslim tokens: error:")


def test_bad_videos_are_one_line_exit_2(vidslim: Run, tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n")
    for path in (tmp_path / "missing.mp4", fake):
        status, out, err = vidslim("tokens", path)
        assert status == 2 and out == ""
        assert len(err.strip().splitlines()) == 1 and str(path) in err


def test_viz_png_gif_mp4(vidslim: Run, square_video: Path, tmp_path: Path) -> None:
    png, gif, mp4 = tmp_path / "a.png", tmp_path / "a.gif", tmp_path / "a.mp4"
    status, _, err = vidslim("tokens", square_video, "--size", "64", "--viz", png, "--viz-window", "1")
    assert status == 0, err
    with Image.open(png) as image:  # 16 frames of 64 px, 8 per row, 2 px gaps, a title on top
        assert image.size[0] == 8 * (64 + 2) + 2 and image.size[1] > 2 * (64 + 2) + 2
    for path in (gif, mp4):
        doc = as_json(vidslim, square_video, "--viz", path)
        assert doc["viz"] == str(path)
    with Image.open(gif) as image:  # both frames of a tubelet are the same picture: Pillow merges them
        assert image.size == (64, 64) and image.n_frames == 16
        durations = []
        for i in range(image.n_frames):
            image.seek(i)
            durations.append(image.info["duration"])
    assert durations == [2 * 120] * 16  # 8 fps: 125 ms, stored in GIF's 10 ms steps
    with av.open(str(mp4)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 32 and (frames[0].width, frames[0].height) == (64, 64)
    status, _, err = vidslim("tokens", square_video, "--size", "64", "--viz", png, "--viz-window", "2")
    assert status == 2 and "--viz-window 2" in err
