"""Tiny videos for the `vidslim tokens` tests: a red square jumping between patches over a static background.

64 x 64 px at 8 fps, lossless H.264 (qp 0), so the static background decodes to identical pixels in every frame
and RLT's mask is exactly what the construction says. With 16 x 16 patches the frame is a 4 x 4 grid; the square
fills one cell of grid row 1, and in tubelet g (frames 2g and 2g+1) it sits in column PATH[g % 8].
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import vidslim.cli.main as cli_main
from video_files import write_video

FPS = 8
SIDE = 64
CELL = 16
ROW = 1  # grid row of the square
PATH = (0, 1, 2, 3, 3, 2, 1, 0)  # grid column of the square in tubelet g % 8
RED = (230, 40, 40)


def square_frame(index: int) -> np.ndarray:
    """Frame `index`: a fixed grey gradient with the red square in cell (ROW, PATH[(index // 2) % 8])."""
    ramp = np.linspace(40, 110, SIDE, dtype=np.float64)
    frame = np.empty((SIDE, SIDE, 3), dtype=np.uint8)
    frame[:] = (ramp[:, None, None] * 0.5 + ramp[None, :, None] * 0.5).astype(np.uint8)
    col = PATH[(index // 2) % len(PATH)]
    frame[ROW * CELL : (ROW + 1) * CELL, col * CELL : (col + 1) * CELL] = RED
    return frame


def write_square_video(path: Path, num_frames: int) -> Path:
    """Write `num_frames` frames of `square_frame` as lossless H.264 at FPS."""
    frames = np.stack([square_frame(i) for i in range(num_frames)])
    return write_video(path, frames, FPS, "libx264", "yuv420p", qp="0", preset="veryfast")


@pytest.fixture(scope="session")
def square_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 frames (5 s): two full windows of 16 frames and 8 frames after them."""
    return write_square_video(tmp_path_factory.mktemp("square") / "square.mp4", 40)


@pytest.fixture(scope="session")
def make_square_video(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """Factory: a square video of any number of frames."""
    folder = tmp_path_factory.mktemp("squares")
    return lambda num_frames: write_square_video(folder / f"square_{num_frames}.mp4", num_frames)


@pytest.fixture
def vidslim(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run `vidslim ARGS...` in-process: returns (exit status, stdout, stderr).

    Registers `tokens` on the command for the test if the command does not list it yet.
    """
    if "tokens" not in cli_main._COMMANDS:
        monkeypatch.setattr(cli_main, "_COMMANDS", (*cli_main._COMMANDS, "tokens"))

    def run(*args: str) -> tuple[int, str, str]:
        status = cli_main.main([str(a) for a in args])
        out = capsys.readouterr()
        return status, out.out, out.err

    return run
