"""Faults in building the compiled kernel of vidslim.attention.cpu (build.py): a compiler that hangs, a switch
spelled another way. Each checks that nothing was built or run and that block-sparse attention still gives the
right result. Every build goes to a cache under tmp_path, never to ~/.cache.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vidslim.attention.block_sparse import gathered_attend
from vidslim.attention.cpu import build, choose_kernel, gather_kernel_only, native_kernel
from vidslim.attention.svitt_pattern import SViTTPattern

HAVE_BLAS = build._torch_blas() is not None


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A private cache ($VIDSLIM_CACHE_DIR) and temporary directory (the fallback's parent) under tmp_path; the
    loader forgets its kernel before and after. Yields tmp_path."""
    monkeypatch.setenv("VIDSLIM_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.delenv("VIDSLIM_NATIVE", raising=False)
    monkeypatch.delenv("VIDSLIM_CC_TIMEOUT", raising=False)
    build.forget_native_kernel()
    yield tmp_path
    build.forget_native_kernel()


def count_builds(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """From now on, the compiler command lines the loader runs (its `--version` queries left out)."""
    builds: list[list[str]] = []
    run = build._run_compiler

    def spy(command: list[str], timeout: float) -> object:
        if "-shared" in command:
            builds.append(command)
        return run(command, timeout)

    monkeypatch.setattr(build, "_run_compiler", spy)
    return builds


def check_attention(expect: str) -> None:
    """Block-sparse attention runs the `expect`ed kernel and equals SDPA with the pattern's dense mask."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(24, 2, 8, generator=gen) for _ in range(3))
    pattern = SViTTPattern(4, 1, 2, 0, torch.rand(6, 6, generator=gen))
    with torch.inference_mode():
        assert choose_kernel(q, k, v) == expect
        out = gathered_attend(q, k, v, pattern.plan([24], q.device))
        with gather_kernel_only():
            reference = gathered_attend(q, k, v, pattern.plan([24], q.device))
        dense = F.scaled_dot_product_attention(
            q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), attn_mask=pattern.dense_mask(24)
        ).transpose(0, 1)
    torch.testing.assert_close(out, reference, atol=2e-6, rtol=2e-6)
    torch.testing.assert_close(out, dense, atol=2e-6, rtol=1e-5)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == build.__name__ and r.levelno >= logging.WARNING]


@pytest.mark.skipif(not HAVE_BLAS or shutil.which("sleep") is None, reason="no BLAS sgemm_ or no sleep program")
@pytest.mark.parametrize("hangs_on", ["--version", "compile"])
def test_a_hanging_compiler_is_stopped_and_falls_back(
    fresh: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, hangs_on: str
) -> None:
    """A $CC that never returns is killed (with what it started) after VIDSLIM_CC_TIMEOUT; one log line."""
    pid_file = fresh / "sleep.pid"
    script = fresh / "hanging-cc"
    answer = 'if [ "$1" = --version ]; then echo fake-cc 1.0; exit 0; fi\n' if hangs_on == "compile" else ""
    script.write_text(f"#!/bin/sh\n{answer}sleep 60 &\necho $! > {pid_file}\nwait\n")
    script.chmod(0o755)
    monkeypatch.setenv("CC", str(script))
    monkeypatch.setenv("VIDSLIM_CC_TIMEOUT", "0.5")
    start = time.monotonic()
    with caplog.at_level(logging.INFO, logger=build.__name__):
        assert native_kernel() is None
    assert time.monotonic() - start < 10
    [warning] = warnings_of(caplog)
    assert "did not finish within 0.5 s" in warning and "VIDSLIM_CC_TIMEOUT" in warning and "\n" not in warning
    assert not (fresh / "cache" / "kernels").exists() or not any((fresh / "cache" / "kernels").iterdir())
    sleeper = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(sleeper):
        time.sleep(0.05)
    assert not _alive(sleeper), "the compiler's children must be stopped with it"
    check_attention("gather")


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting to be reaped does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def test_a_bad_compiler_timeout_is_warned_about(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("VIDSLIM_CC_TIMEOUT", "soon")
    with caplog.at_level(logging.WARNING, logger=build.__name__):
        assert build.compiler_timeout() == build.COMPILER_TIMEOUT
    assert "VIDSLIM_CC_TIMEOUT='soon'" in caplog.text
    monkeypatch.setenv("VIDSLIM_CC_TIMEOUT", "2.5")
    assert build.compiler_timeout() == 2.5


@pytest.mark.parametrize("value", ["0", "false", "No", "OFF", " off "])
def test_vidslim_native_off(
    fresh: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    monkeypatch.setenv("VIDSLIM_NATIVE", value)
    builds = count_builds(monkeypatch)
    with caplog.at_level(logging.INFO, logger=build.__name__):
        assert native_kernel() is None
    assert builds == [] and warnings_of(caplog) == []
    assert not (fresh / "cache").exists()
    check_attention("gather")


@pytest.mark.parametrize("value", ["", "1", "true", "YES", "On"])
def test_vidslim_native_on(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str) -> None:
    monkeypatch.setenv("VIDSLIM_NATIVE", value)
    with caplog.at_level(logging.WARNING, logger=build.__name__):
        assert build.native_switched_on()
    assert caplog.text == ""


def test_vidslim_native_other_values_are_warned_about(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("VIDSLIM_NATIVE", "fast")
    with caplog.at_level(logging.WARNING, logger=build.__name__):
        assert build.native_switched_on()
    [warning] = warnings_of(caplog)
    assert "VIDSLIM_NATIVE='fast'" in warning and "0/false/no/off" in warning and "1/true/yes/on" in warning
