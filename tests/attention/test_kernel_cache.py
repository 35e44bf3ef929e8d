"""Attacks on and faults in the compiled-kernel cache of vidslim.attention.cpu (build.py, cache.py).

Each test plants what an attacker or a crash would leave (a library whose constructor writes a marker file, in a
folder others can write or own; a truncated build; a compiler that hangs; a switch spelled another way) and
checks that no planted code ran and that block-sparse attention still gives the right result. Every build goes
to a cache under tmp_path, never to ~/.cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from kernel_builds import count_builds
from vidslim.attention.block_sparse import gathered_attend
from vidslim.attention.cpu import build, cache, choose_kernel, gather_kernel_only, native_kernel
from vidslim.attention.svitt_pattern import SViTTPattern

COMPILER = build.find_compiler()
HAVE_BLAS = build._torch_blas() is not None
needs_compiler = pytest.mark.skipif(COMPILER is None or not HAVE_BLAS, reason="no C compiler or no BLAS sgemm_")
needs_root = pytest.mark.skipif(getattr(os, "geteuid", lambda: -1)() != 0, reason="chown to another user needs root")
OTHER_USER = 12345

TRAP_SOURCE = r"""
#include <stdio.h>
__attribute__((constructor)) static void planted(void) {
    FILE *marker = fopen(MARKER, "w");
    if (marker != NULL) { fputs("planted code ran\n", marker); fclose(marker); }
}
"""


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


@pytest.fixture
def trap(tmp_path: Path) -> tuple[Path, Path]:
    """(a shared library whose constructor writes a marker file, that marker's path), the trap proven to work."""
    assert COMPILER is not None
    marker = tmp_path / "planted-code-ran"
    source = tmp_path / "trap.c"
    source.write_text(TRAP_SOURCE)
    library = tmp_path / "trap.so"
    command = [*COMPILER.split(), "-shared", "-fPIC", f'-DMARKER="{marker}"', str(source), "-o", str(library)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    subprocess.run([sys.executable, "-c", f"import ctypes; ctypes.CDLL({str(library)!r})"], check=True, timeout=60)
    assert marker.exists(), "the trap must fire when loaded, or the tests below prove nothing"
    marker.unlink()
    return library, marker


def plant(library: Path, folder: Path) -> list[Path]:
    """Copy `library` to every name the loader would look for in `folder`, each with a matching checksum, so that
    only the ownership checks stand between it and dlopen."""
    assert COMPILER is not None
    folder.mkdir(parents=True, exist_ok=True)
    version = build._compiler_version(COMPILER, 60)
    planted = []
    for flags in build.FLAG_SETS:
        target = build.kernel_file(Path(os.path.realpath(folder)), COMPILER, version, flags)
        shutil.copyfile(library, target)
        target.chmod(0o755)
        cache.checksum_file(target).write_text(hashlib.sha256(target.read_bytes()).hexdigest() + "\n")
        planted.append(target)
    return planted


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


@needs_compiler
@pytest.mark.parametrize("attack", ["group-writable", "other-writable", "owned-by-another-user"])
def test_a_library_planted_in_a_folder_others_can_write_is_never_loaded(
    fresh: Path, trap: tuple[Path, Path], attack: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The cache folder is refused in one log line naming it and why; the kernel is built in the private
    fallback folder instead, and the planted library never runs."""
    library, marker = trap
    folder = fresh / "cache" / "kernels"
    plant(library, folder)
    if attack == "owned-by-another-user":
        if os.geteuid() != 0:
            pytest.skip("chown to another user needs root")
        os.chown(folder, OTHER_USER, OTHER_USER)
        folder.chmod(0o700)
    else:
        folder.chmod(0o770 if attack == "group-writable" else 0o707)
    with caplog.at_level(logging.INFO, logger=build.__name__):
        loaded = native_kernel()
    assert not marker.exists()
    assert loaded is not None and loaded.path.parent == cache.fallback_dir()
    [warning] = warnings_of(caplog)
    assert str(folder) in warning and "\n" not in warning
    assert ("owned by uid 12345" if attack == "owned-by-another-user" else "writable by group or others") in warning
    check_attention("native")
    assert not marker.exists()


@needs_compiler
@needs_root
def test_a_fallback_folder_owned_by_another_user_is_refused(
    fresh: Path, trap: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The cache cannot be used (its path is a file), and $TMPDIR/vidslim-kernels-<uid> was made by someone else
    with a library planted in it: nothing is loaded, attention runs the torch path, one log line says why."""
    blocker = fresh / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("VIDSLIM_CACHE_DIR", str(blocker))
    library, marker = trap
    folder = cache.fallback_dir()
    plant(library, folder)
    os.chown(folder, OTHER_USER, OTHER_USER)
    folder.chmod(0o755)
    builds = count_builds(monkeypatch)
    with caplog.at_level(logging.INFO, logger=build.__name__):
        assert native_kernel() is None
    assert not marker.exists() and builds == []
    [warning] = warnings_of(caplog)
    assert str(folder) in warning and "owned by uid 12345" in warning and "\n" not in warning
    check_attention("gather")
    assert not marker.exists()


@needs_compiler
@pytest.mark.parametrize("attack", ["file-others-can-write", "file-of-another-user"])
def test_a_library_planted_in_our_own_folder_is_rebuilt_not_loaded(
    fresh: Path, trap: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, attack: str
) -> None:
    """In our private folder, a library that is not ours alone (even with a matching checksum) is replaced by a
    fresh build."""
    library, marker = trap
    folder = cache.private_folder(cache.cache_dir())
    planted = plant(library, folder)
    for path in planted:
        if attack == "file-of-another-user":
            if os.geteuid() != 0:
                pytest.skip("chown to another user needs root")
            os.chown(path, OTHER_USER, OTHER_USER)
        else:
            path.chmod(0o777)
    builds = count_builds(monkeypatch)
    loaded = native_kernel()
    assert not marker.exists()
    assert loaded is not None and loaded.path == planted[0] and len(builds) == 1
    info = loaded.path.stat()
    assert info.st_uid == os.geteuid() and not info.st_mode & 0o022
    check_attention("native")
    assert not marker.exists()


@needs_compiler
@pytest.mark.parametrize("damage", ["truncated", "checksum-missing", "checksum-wrong"])
def test_a_damaged_library_in_the_cache_is_rebuilt_not_crashed_on(
    fresh: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    """A build cut short (a crash, a full disk) would kill the process with a bus error if mapped: it is rebuilt."""
    assert COMPILER is not None
    folder = cache.private_folder(cache.cache_dir())
    built = build.compile_kernel(COMPILER, folder)  # built, not loaded: this process has never mapped it
    good = built.read_bytes()
    if damage == "truncated":
        built.write_bytes(good[: len(good) // 3])
    elif damage == "checksum-missing":
        cache.checksum_file(built).unlink()
    else:
        cache.checksum_file(built).write_text("0" * 64 + "\n")
    builds = count_builds(monkeypatch)
    loaded = native_kernel()
    assert loaded is not None and loaded.path == built and len(builds) == 1
    assert cache.damage(built) is None
    check_attention("native")


@needs_compiler
def test_a_build_is_installed_privately_with_its_checksum(fresh: Path) -> None:
    """Folders the loader creates are 700 and the library is not group-writable, even under a umask of 002."""
    before = os.umask(0o002)
    try:
        loaded = native_kernel()
    finally:
        os.umask(before)
    assert loaded is not None
    for path in (fresh / "cache", fresh / "cache" / "kernels"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert not loaded.path.stat().st_mode & 0o022
    expected = hashlib.sha256(loaded.path.read_bytes()).hexdigest()
    assert cache.checksum_file(loaded.path).read_text().strip() == expected
    assert sorted(p.name for p in loaded.path.parent.iterdir()) == [loaded.path.name, f"{loaded.path.name}.sha256"]


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


def test_a_folder_above_that_others_can_write_is_refused_unless_sticky(tmp_path: Path) -> None:
    """Someone who can write a folder above ours can rename ours away and put theirs in its place; /tmp's sticky
    bit forbids that, so a sticky folder is fine."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(cache.UnsafeFolder, match="a folder above it, is writable by group or others"):
        cache.private_folder(shared / "vidslim" / "kernels")
    shared.chmod(0o1777)
    folder = cache.private_folder(shared / "vidslim" / "kernels")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
