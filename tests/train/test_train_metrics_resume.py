"""Metrics after kills: a run killed before its first checkpoint, or just after a stage began, logs no row twice."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import torch
from train_tiny import TinyClassifier, config, factory

from vidslim.tasks.classification import ClassificationTask
from vidslim.train import Stage, run_training
from vidslim.train.checkpoint import list_checkpoints


def train(run_dir: Path, crash_at: int | None = None, **overrides: Any) -> Any:
    torch.manual_seed(0)

    def stop(step: int, record: dict) -> None:
        if step == crash_at:
            raise KeyboardInterrupt("simulated kill")

    with contextlib.suppress(KeyboardInterrupt):
        return run_training(config(run_dir, **overrides), TinyClassifier(), ClassificationTask(), factory(16),
                            on_step=stop)


def train_steps(run_dir: Path) -> list[int]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r["step"] for r in map(json.loads, lines) if r["kind"] == "train"]


def test_kills_before_the_first_checkpoint_log_no_step_twice(tmp_path: Path) -> None:
    for _ in range(3):  # killed at step 3 each time, before any checkpoint
        train(tmp_path, steps=6, crash_at=3)
    assert list_checkpoints(tmp_path) == []
    train(tmp_path, steps=6)
    assert train_steps(tmp_path) == [1, 2, 3, 4, 5, 6]
    csv_rows = (tmp_path / "train.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[1]) for row in csv_rows] == [1, 2, 3, 4, 5, 6]


def test_a_kill_after_a_stage_change_logs_the_stage_once(tmp_path: Path) -> None:
    stages = [Stage("a", steps=2), Stage("b", steps=3)]
    train(tmp_path, steps=None, stages=stages, checkpoint_every=2, crash_at=3)  # stage b started at step 2
    train(tmp_path, steps=None, stages=stages, checkpoint_every=2)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["name"]) for r in lines if r["kind"] == "stage"] == [(0, "a"), (2, "b")]
    assert train_steps(tmp_path) == [1, 2, 3, 4, 5]
