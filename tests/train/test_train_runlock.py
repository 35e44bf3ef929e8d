"""Attacks on a run folder: a second run while one holds it, a holder killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from train_tiny import TinyClassifier, config, factory

from vidslim.errors import RunLockedError
from vidslim.tasks.classification import ClassificationTask
from vidslim.train import run_training
from vidslim.train.checkpoint import list_checkpoints
from vidslim.train.runlock import RunLock

SRC = Path(__file__).resolve().parents[2] / "src"
HOLDER = """
import sys, time
from vidslim.train.runlock import RunLock
lock = RunLock(sys.argv[1]).acquire()  # kept referenced: the lock lives as long as its open file
print("locked", flush=True)
time.sleep(60)
"""


def train(run_dir: Path) -> Any:
    torch.manual_seed(0)
    return run_training(config(run_dir), TinyClassifier(), ClassificationTask(), factory(16))


def test_a_second_run_on_a_held_folder_is_refused(tmp_path: Path) -> None:
    with RunLock(tmp_path):
        with pytest.raises(RunLockedError) as caught:
            train(tmp_path)
        message = str(caught.value)
        assert "\n" not in message and f"pid {os.getpid()}" in message and str(tmp_path) in message
        assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "config.yaml").exists()
        assert list_checkpoints(tmp_path) == []
    assert train(tmp_path).steps == 4  # released: the folder is free again


def test_a_killed_holder_leaves_no_stuck_lock(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"pid {holder.pid} "):
            RunLock(tmp_path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    with RunLock(tmp_path) as lock:  # the kernel dropped the dead holder's lock
        assert lock.held and json.loads(lock.path.read_text())["pid"] == os.getpid()


def test_nested_holds_in_one_process_share_the_lock(tmp_path: Path) -> None:
    """A command owns its folder around `run_training`, which holds it too: the inner hold shares the outer lock,
    which outlives it and keeps out other runs until the command is done."""
    from vidslim.train.distributed import DistInfo
    from vidslim.train.runlock import hold_run_dir

    info = DistInfo(0, 1, 0, torch.device("cpu"))
    with hold_run_dir(tmp_path, info):
        with hold_run_dir(tmp_path / ".", info), pytest.raises(RunLockedError):  # the same folder, spelled otherwise
            RunLock(tmp_path).acquire()
        with pytest.raises(RunLockedError):  # the inner block ended: still held
            RunLock(tmp_path).acquire()
    with RunLock(tmp_path) as lock:
        assert lock.held
