"""Faults: a learning rate that diverges, weights poisoned between two checks.

Nothing non-finite may reach the disk, the last good checkpoint must survive (even with keep_checkpoints=1)
and resume to finite weights, and the error is one line that says what to change.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from train_tiny import TinyClassifier, config, factory

import vidslim.train.checkpoint as ckpt
from vidslim.errors import TrainingError
from vidslim.tasks.classification import ClassificationTask
from vidslim.train import run_training


def train(run_dir: Path, model: nn.Module | None = None, crash_at: int | None = None, **overrides: Any) -> Any:
    """One tiny run; `crash_at` kills it (an exception) right after that step, like a SIGKILL."""
    torch.manual_seed(0)

    def stop(step: int, record: dict) -> None:
        if step == crash_at:
            raise KeyboardInterrupt("simulated kill")

    values: dict[str, Any] = dict(steps=8, checkpoint_every=2, keep_checkpoints=1)
    values.update(overrides)
    with contextlib.suppress(KeyboardInterrupt):
        return run_training(config(run_dir, **values), model or TinyClassifier(), ClassificationTask(),
                            factory(16), on_step=stop)


@pytest.mark.parametrize("log_every", [1, 0])  # 0: no logging at all, the check before the save must catch it
def test_a_diverging_lr_keeps_the_last_good_checkpoint(tmp_path: Path, log_every: int) -> None:
    train(tmp_path, crash_at=5, log_every=log_every)  # a good start: checkpoint of step 4 (keep 1)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [4]
    with pytest.raises(TrainingError) as caught:  # AdamW with weight decay at lr 1e30 overflows at once
        train(tmp_path, lr=1e30, log_every=log_every, grad_clip=None)
    message = str(caught.value)
    assert "\n" not in message and "loss became nan at step 6" in message  # step 5 ran on good weights
    assert str(ckpt.checkpoint_root(tmp_path) / "step_00000004") in message and "was kept" in message
    assert "lower lr (now 1e+30)" in message and "grad_clip" in message
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [4]  # nothing poisoned written, nothing pruned
    model = TinyClassifier()
    result = train(tmp_path, model=model, log_every=log_every)  # sane lr again: resumes and finishes
    assert result.resumed_from == 4 and result.steps == 8
    assert all(torch.isfinite(p).all() for p in model.parameters())
    loaded = ckpt.latest_checkpoint(tmp_path)
    assert loaded is not None and loaded.step == 8 and ckpt.first_nonfinite(loaded.model) is None


def test_poisoned_weights_are_never_saved(tmp_path: Path) -> None:
    model = TinyClassifier()

    def poison(step: int, record: dict) -> None:  # a corrupted update the loss has not seen yet
        if step == 2:
            with torch.no_grad():
                model.trunk.out.bias[0] = float("inf")

    with pytest.raises(TrainingError, match=r"parameter model\.trunk\.out\.bias holds NaN or inf at step 2; "
                                            r"no checkpoint had been written yet"):
        run_training(config(tmp_path, checkpoint_every=2), model, ClassificationTask(), factory(16), on_step=poison)
    assert ckpt.list_checkpoints(tmp_path) == []
