"""A killed save_model leaves `.model-tmp-<pid>` folders beside its target: those of dead processes are removed,
nothing else is touched (live processes, this process, fresh folders, links, other names)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vidslim.models.stale_temp import remove_stale_temp_folders, temp_folder_pid


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def age(path: Path, seconds: float) -> None:
    """Make `path` and what is directly in it look `seconds` old."""
    then = time.time() - seconds
    for p in [path, *path.iterdir()]:
        os.utime(p, (then, then), follow_symlinks=False)


@pytest.mark.skipif(os.name == "nt", reason="process probing is POSIX only; nothing is removed on Windows")
def test_stale_temp_folders_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = dead_pid()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    folders = {
        "stale": tmp_path / f".model-tmp-{dead}",
        "stale_suffixed": tmp_path / f".model-tmp-{dead}-2",
        "fresh_dead": tmp_path / f".model-tmp-{dead}-3",
        "mine": tmp_path / f".model-tmp-{os.getpid()}",
        "alive": tmp_path / f".model-tmp-{os.getppid()}",
        "other": tmp_path / ".model-tmp-notapid",
        "checkpoint": tmp_path / "ckpt",
    }
    for name, folder in folders.items():
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"half written")
        if name != "fresh_dead":
            age(folder, 3600)
    (tmp_path / f".model-tmp-{dead + 1}").symlink_to(outside, target_is_directory=True)  # a link: never followed
    removed = remove_stale_temp_folders(tmp_path)
    assert sorted(removed) == sorted([folders["stale"], folders["stale_suffixed"]])
    for name, folder in folders.items():
        assert folder.exists() == (name not in ("stale", "stale_suffixed")), name
    assert (outside / "keep.txt").read_text() == "keep"
    assert remove_stale_temp_folders(tmp_path, min_age_s=0) == [folders["fresh_dead"]]
    assert remove_stale_temp_folders(tmp_path / "missing") == []


def test_temp_folder_names() -> None:
    assert temp_folder_pid(Path("/x/.model-tmp-123")) == 123
    assert temp_folder_pid(Path("/x/.model-tmp-123-a")) == 123
    assert temp_folder_pid(Path("/x/.model-tmp-")) is None
    assert temp_folder_pid(Path("/x/model-tmp-123")) is None
