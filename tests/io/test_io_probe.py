"""probe() and `vidslim info`: metadata of videos whose properties the fixtures set."""

from __future__ import annotations

import json

import pytest

from vidslim.cli.main import main
from vidslim.io import VideoInfo, probe
from vidslim.io.probe import header_duration


def test_probe_mp4(mp4):
    info = probe(mp4)
    assert isinstance(info, VideoInfo)
    assert (info.codec, info.width, info.height, info.fps) == ("h264", 80, 64, 25.0)
    assert info.num_frames == 50 and not info.num_frames_estimated
    assert info.duration_s == pytest.approx(2.0)
    assert info.rotation == 0 and info.pix_fmt == "yuv420p" and not info.has_audio
    assert info.path == str(mp4) and info.size_bytes == mp4.stat().st_size
    d = info.to_dict()
    assert json.loads(json.dumps(d)) == d


def test_matroska_frame_count_is_estimated_unless_counted(make_video):
    path = make_video("v.mkv", num_frames=37, codec="ffv1", pix_fmt="yuv444p", width=175, height=143)
    info = probe(path)
    assert (info.width, info.height, info.codec) == (175, 143, "ffv1")
    assert info.num_frames_estimated and abs(info.num_frames - 37) <= 1
    counted = probe(path, count_frames=True)
    assert counted.num_frames == 37 and not counted.num_frames_estimated


def test_rotated_video_reports_upright_size(make_video):
    info = probe(make_video("r.mp4", num_frames=3, rotation=90))
    assert info.rotation == 90 and (info.width, info.height) == (64, 80)
    assert probe(make_video("r2.mp4", num_frames=3, rotation=-90)).rotation == -90


def test_raw_stream_without_container_counts_its_frames(make_video):
    info = probe(make_video("raw.h264", num_frames=12))
    assert info.num_frames == 12 and not info.num_frames_estimated
    assert info.duration_s == pytest.approx(12 / 25)


def test_header_duration_is_probes_where_the_header_has_one(mp4, make_video):
    assert header_duration(mp4) == probe(mp4).duration_s == pytest.approx(2.0)
    mkv = make_video("d.mkv", num_frames=20)
    assert header_duration(mkv) == probe(mkv).duration_s
    assert header_duration(make_video("raw2.h264", num_frames=12)) is None  # probe counts the frames instead


def test_cli_text(mp4, capsys):
    assert main(["info", str(mp4)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == str(mp4)
    for fragment in ("h264 (yuv420p)", "80 x 64", "fps        25", "frames     50", "2.000 s", "rotation   0"):
        assert fragment in out


def test_cli_json_one_object_for_one_video(mp4, capsys):
    assert main(["info", str(mp4), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data, dict)
    assert {k: data[k] for k in ("path", "codec", "width", "height", "fps", "num_frames", "duration_s")} == {
        "path": str(mp4), "codec": "h264", "width": 80, "height": 64, "fps": 25.0, "num_frames": 50,
        "duration_s": 2.0,
    }
    assert data["num_frames_estimated"] is False and data["rotation"] == 0


def test_cli_json_list_for_several_and_exit_2_if_one_fails(mp4, make_video, tmp_path, capsys):
    other = make_video("b.mkv", num_frames=10)
    assert main(["info", "--json", str(mp4), str(other)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["path"] for d in data] == [str(mp4), str(other)]
    assert data[1]["num_frames_estimated"] is True
    assert main(["info", "--json", "--count-frames", str(other)]) == 0
    counted = json.loads(capsys.readouterr().out)
    assert counted["num_frames"] == 10 and counted["num_frames_estimated"] is False

    missing = tmp_path / "missing.mp4"
    assert main(["info", "--json", str(mp4), str(missing)]) == 2
    captured = capsys.readouterr()
    assert [d["path"] for d in json.loads(captured.out)] == [str(mp4)]
    assert captured.err.strip() == f"vidslim info: error: {missing}: no such file (check the path)"


def test_cli_runs_as_a_process(mp4):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "vidslim.cli.main", "info", "--json", str(mp4)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout)["num_frames"] == 50
    bad = subprocess.run([sys.executable, "-m", "vidslim.cli.main", "info", str(mp4) + ".nope"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no such file" in bad.stderr
