"""Every kind of bad input gives its specific error, naming the file and the reason, never a PyAV traceback."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from video_files import write_audio_only
from vidslim.cli.main import main
from vidslim.errors import NoVideoStreamError, VideoDecodeError, VideoNotFoundError, VidslimError
from vidslim.io import probe, read_video


def _blank_payload(make_video: Callable[..., Path], path: Path) -> Path:
    """A valid container whose video packets are all zero bytes: it opens, but no frame decodes."""
    good = make_video("good.mp4", num_frames=10, container_options={"movflags": "faststart"})
    data = bytearray(good.read_bytes())
    start = data.find(b"mdat") + 4
    data[start:] = bytes(len(data) - start)
    path.write_bytes(bytes(data))
    return path


def _bad_file(kind: str, tmp_path: Path, make_video: Callable[..., Path]) -> Path:
    path = tmp_path / f"{kind}.mp4"
    if kind == "missing":
        return path
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("<html><body>404 Not Found</body></html>\n" * 10)
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "truncated":  # PyAV writes the index (moov) at the end: cut it off
        data = make_video("whole.mp4").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "audio":
        write_audio_only(path)
    elif kind == "undecodable":
        _blank_payload(make_video, path)
    return path


CASES = [
    ("missing", VideoNotFoundError, "no such file"),
    ("empty", VideoDecodeError, r"the file is empty \(0 bytes\)"),
    ("text", VideoDecodeError, "is a text file, not a video"),
    ("random", VideoDecodeError, "cannot read it as a video container"),
    ("truncated", VideoDecodeError, "cannot read it as a video container.*truncated"),
    ("audio", NoVideoStreamError, r"holds no video stream \(found: audio\)"),
    ("undecodable", VideoDecodeError, r"no decodable video frame \(\d+ packets failed to decode\)"),
]


@pytest.mark.parametrize(("kind", "error", "reason"), CASES, ids=[c[0] for c in CASES])
def test_bad_inputs_raise_specific_errors(kind, error, reason, tmp_path, make_video):
    path = _bad_file(kind, tmp_path, make_video)
    for read in (probe, lambda p: read_video(p, num_frames=4, size=32)):
        with pytest.raises(error, match=reason) as caught:
            read(path)
        assert caught.value.path == str(path) and str(path) in str(caught.value)
        assert not isinstance(caught.value, av.FFmpegError)


def test_missing_file_is_also_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "nope.mp4")


def test_directory_is_not_a_video(tmp_path):
    with pytest.raises(VideoNotFoundError, match="is a directory"):
        read_video(tmp_path)


@pytest.mark.parametrize(("kind", "error", "reason"), CASES, ids=[c[0] for c in CASES])
def test_command_line_prints_one_line_and_exits_2(kind, error, reason, tmp_path, make_video, capsys):
    path = _bad_file(kind, tmp_path, make_video)
    assert main(["info", str(path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidslim info: error: ") and str(path) in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""


def test_a_fifo_is_named_as_one_and_never_waited_on(tmp_path):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes: it must not be opened
    for read in (probe, read_video):
        with pytest.raises(VideoNotFoundError, match=r"pipe\.mp4: is a FIFO \(named pipe\), not a video file"):
            read(fifo)


@pytest.mark.parametrize("name", ["x" * 300 + ".mp4", "y" * 300 + "/a.mp4", "file.txt/a.mp4"])
def test_names_the_system_refuses_are_one_error(tmp_path, name):
    (tmp_path / "file.txt").write_text("not a folder")
    with pytest.raises(VideoNotFoundError) as caught:
        probe(tmp_path / name)
    assert str(tmp_path / name) in str(caught.value)


def test_control_characters_in_a_name_are_escaped(tmp_path):
    path = tmp_path / "bad\x1b[31m\nname.mp4"
    path.write_text("not a video")
    with pytest.raises(VideoDecodeError) as caught:
        probe(path)
    message = str(caught.value)
    assert "\x1b" not in message and "\n" not in message and "bad\\x1b[31m\\nname.mp4: is a text file" in message
    assert caught.value.path == str(path)  # the attribute keeps the real name


def test_errors_are_vidslim_errors():
    assert issubclass(VideoDecodeError, VidslimError)
    assert issubclass(NoVideoStreamError, VideoDecodeError) and issubclass(VideoNotFoundError, VideoDecodeError)
