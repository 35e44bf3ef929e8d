"""Faults on resume: flipped bytes in checkpoint files, every checkpoint damaged, checkpoints from before hashes,
a checkpoint of another model width.

A damaged checkpoint must be skipped with a warning naming it (resume falls back to the previous one), damaged
checkpoints must never crowd new ones out of `keep_checkpoints`, and a checkpoint that does not fit the model is
one line saying what to do.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from train_tiny import NUM_CLASSES, SIZE, TinyClassifier, config, factory

import vidslim.train.checkpoint as ckpt
from vidslim.errors import CheckpointError
from vidslim.tasks.classification import ClassificationTask
from vidslim.train import run_training


def train(run_dir: Path, on_step: Any = None, model: nn.Module | None = None, **overrides: Any) -> Any:
    torch.manual_seed(0)
    values: dict[str, Any] = dict(steps=6, checkpoint_every=2, keep_checkpoints=3)
    values.update(overrides)
    return run_training(config(run_dir, **values), model or TinyClassifier(), ClassificationTask(), factory(16),
                        on_step=on_step)


def flip_byte(path: Path, from_end: int = 3) -> None:
    """Flip one bit near the end of the file (tensor data, not the header): the size stays the same."""
    data = bytearray(path.read_bytes())
    data[-from_end] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", [ckpt.MODEL_NAME, ckpt.OPTIMIZER_NAME, ckpt.STATE_NAME])
def test_a_flipped_byte_falls_back_to_the_previous_checkpoint(tmp_path: Path, name: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    train(tmp_path, steps=4)
    newest = ckpt.checkpoint_root(tmp_path) / "step_00000004"
    if name == ckpt.STATE_NAME:  # a changed value in the metadata: still valid JSON, the right size even
        text = (newest / name).read_text()
        (newest / name).write_text(text.replace('"step_in_stage": 4', '"step_in_stage": 5'))
    else:
        flip_byte(newest / name)
    with pytest.raises(CheckpointError, match="does not match its recorded sha256"):
        ckpt.read_checkpoint(newest)
    with caplog.at_level(logging.WARNING, logger="vidslim.train.checkpoint"):
        result = train(tmp_path, steps=4)
    assert result.resumed_from == 2
    assert any(str(newest) in r.getMessage() and "skipping damaged checkpoint" in r.getMessage()
               for r in caplog.records)
    loaded = ckpt.latest_checkpoint(tmp_path)  # step 4 written again, intact
    assert loaded is not None and loaded.step == 4


def test_every_checkpoint_damaged_new_ones_survive(tmp_path: Path) -> None:
    train(tmp_path, steps=12, checkpoint_every=4)  # 4, 8, 12
    for _, path in ckpt.list_checkpoints(tmp_path):
        flip_byte(path / ckpt.MODEL_NAME)
    seen: list[list[int]] = []

    def look(step: int, record: dict) -> None:
        seen.append([s for s, _ in ckpt.list_checkpoints(tmp_path)])

    result = train(tmp_path, on_step=look, steps=12, checkpoint_every=2, keep_checkpoints=2)
    assert result.resumed_from is None  # nothing intact: started over
    assert seen[2] == [2]  # after the first save the damaged 4, 8, 12 are gone, the new one kept
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [10, 12]
    for _, path in ckpt.list_checkpoints(tmp_path):
        ckpt.read_checkpoint(path)


def test_the_checkpoint_just_written_is_never_pruned(tmp_path: Path) -> None:
    for step in (10, 20):  # checkpoints of an older run, with higher step numbers
        ckpt.save_checkpoint(tmp_path, step, {}, {"w": torch.ones(1)}, {})
    ckpt.save_checkpoint(tmp_path, 1, {}, {"w": torch.ones(1)}, {}, keep=2)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [1, 20]


def test_nonfinite_optimizer_state_is_damaged(tmp_path: Path) -> None:
    ckpt.save_checkpoint(tmp_path, 1, {}, {"w": torch.ones(1)}, {"w::exp_avg": torch.zeros(1)})
    ckpt.save_checkpoint(tmp_path, 2, {}, {"w": torch.ones(1)}, {"w::exp_avg": torch.tensor([float("nan")])})
    with pytest.raises(CheckpointError, match="w::exp_avg holds NaN or inf"):
        ckpt.read_checkpoint(ckpt.checkpoint_root(tmp_path) / "step_00000002")
    loaded = ckpt.latest_checkpoint(tmp_path)
    assert loaded is not None and loaded.step == 1


def test_a_checkpoint_from_before_hashes_still_resumes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    train(tmp_path, steps=2)
    state_file = ckpt.checkpoint_root(tmp_path) / "step_00000002" / ckpt.STATE_NAME
    state = json.loads(state_file.read_text())
    del state[ckpt.HASH_KEY], state[ckpt.SELF_HASH_KEY]
    state_file.write_text(json.dumps(state))
    with caplog.at_level(logging.INFO, logger="vidslim.train.checkpoint"):
        result = train(tmp_path, steps=4)
    assert result.resumed_from == 2
    assert any("without verifying" in r.getMessage() for r in caplog.records)


class Net(nn.Module):
    """A classifier whose hidden width is a setting (the model a run folder was started with, or another)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.proj = nn.Linear(3 * SIZE * SIZE, width)
        self.out = nn.Linear(width, NUM_CLASSES)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.proj(video.mean(1).flatten(1))))


def test_resuming_with_another_model_width_is_one_clear_line(tmp_path: Path) -> None:
    train(tmp_path, model=Net(16), steps=2)
    with pytest.raises(CheckpointError) as caught:
        train(tmp_path, model=Net(32), steps=4)
    message = str(caught.value)
    assert "\n" not in message
    assert "proj.weight was saved with shape [16, 192] but the model has [32, 192] (and 2 more" in message
    assert "use a new run_dir or the original model settings" in message
