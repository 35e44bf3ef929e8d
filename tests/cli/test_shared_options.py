"""--device, --threads and the counts of embed / export are checked where they are parsed: one line, exit 2, before
any work starts (and 0 is never silently replaced by a default)."""

from __future__ import annotations

import pytest
import torch

from vidslim.cli.main import main
from vidslim.devices import usable_device
from vidslim.errors import ConfigError


@pytest.mark.parametrize(("argv", "expect"), [
    (["bench", "--model", "videomae-tiny", "--threads", "-1"], "use at least 1 thread"),
    (["bench", "--model", "videomae-tiny", "--threads", "two"], "'two' is not a whole number"),
    (["tune", "--model", "videomae-tiny", "--threads", "0"], "use at least 1 thread"),
    (["bench", "--model", "videomae-tiny", "--device", "tpu9"], "'tpu9' is not a device torch knows"),
    (["embed", "x", "--model", "clip-tiny", "--out", "y", "--batch-size", "0"], "0 windows: use at least 1"),
    (["embed", "x", "--model", "clip-tiny", "--out", "y", "--token-budget", "0"], "0 tokens: use at least 1"),
    (["embed", "x", "--model", "clip-tiny", "--out", "y", "--workers", "-1"], "-1 processes: use at least 0"),
    (["embed", "x", "--model", "clip-tiny", "--out", "y", "--part-videos", "0"], "0 videos: use at least 1"),
    (["embed", "x", "--model", "clip-tiny", "--out", "y", "--actors", "0"], "0 actors: use at least 1"),
    (["embed", "x", "--model", "clip-tiny", "--out", "y", "--gpus-per-actor", "nan"], "nan: use a finite number"),
    (["embed", "x", "--model", "clip-tiny", "--out", "y", "--batch-size", "8.5"], "'8.5' is not a whole number"),
    (["export", "clip-tiny", "--out", "y.onnx", "--atol", "nan"], "--atol: nan: use a finite number >= 0"),
    (["export", "clip-tiny", "--out", "y.onnx", "--atol", "-1"], "--atol: -1: use a finite number >= 0"),
])
def test_bad_shared_option_is_one_line(argv: list[str], expect: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:  # argparse's own refusal
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert expect in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_cuda_without_cuda_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="no usable CUDA device"):
        usable_device("cuda")
    with pytest.raises(SystemExit) as exit_info:
        main(["embed", "x", "--model", "clip-tiny", "--out", "y", "--device", "cuda"])
    assert exit_info.value.code == 2
    assert "no usable CUDA device" in capsys.readouterr().err


def test_cpu_is_always_usable() -> None:
    assert usable_device("cpu") == torch.device("cpu")
