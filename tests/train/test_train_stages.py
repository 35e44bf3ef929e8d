"""Curriculum stages: hooks, per-stage loaders, resized parameters, and resuming across a stage change."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from train_tiny import TinyClassifier, config, factory

from vidslim.tasks.classification import ClassificationTask
from vidslim.train import Stage, run_training
from vidslim.train.checkpoint import latest_checkpoint


def records(run_dir: Path, kind: str = "train") -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def test_stages_call_hooks_rebuild_loaders_and_resize(tmp_path: Path) -> None:
    seen_data: list[tuple[str, int]] = []
    frames_in: list[int] = []
    hook_calls: list[str] = []

    class FrameCounter(TinyClassifier):
        def forward(self, video: torch.Tensor) -> torch.Tensor:
            frames_in.append(video.shape[1])
            return super().forward(video)

    stages = [Stage("short", steps=2, overrides={"frames": 2}),
              Stage("long", epochs=0.5, overrides={"frames": 4}, batch_size=4)]
    torch.manual_seed(0)
    model = FrameCounter()
    result = run_training(config(tmp_path, steps=None, stages=stages), model, ClassificationTask(),
                          factory(16, seen=seen_data), on_stage=lambda s: hook_calls.append(s.name))
    # stage 2 lasts half an epoch of 16 items in batches of 4: 2 steps
    assert result.steps == 4
    assert model.stages_seen == hook_calls == ["short", "long"]
    assert frames_in == [2, 2, 4, 4]
    assert ("long", 4) in seen_data
    assert [r["stage"] for r in records(tmp_path)] == [0, 0, 1, 1]
    assert [r["name"] for r in records(tmp_path, "stage")] == ["short", "long"]



class TimeTable(TinyClassifier):
    """A per-frame table resized (nearest) by `on_stage`, as SViTT resizes its temporal position bias."""

    def __init__(self) -> None:
        super().__init__(dropout=0.2)
        self.time = nn.Parameter(torch.linspace(0, 1, 2).view(2, 1, 1, 1))

    def on_stage(self, stage: Stage) -> None:
        super().on_stage(stage)
        frames = int(stage.overrides["frames"])
        if frames != self.time.shape[0]:
            resized = nn.functional.interpolate(self.time.data.view(1, 1, -1), size=frames, mode="nearest")
            self.time = nn.Parameter(resized.view(frames, 1, 1, 1))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return super().forward(video + self.time)


STAGES = [Stage("short", steps=3, overrides={"frames": 2}), Stage("long", steps=4, overrides={"frames": 4})]


def run(run_dir: Path, crash_after: int | None = None) -> TimeTable:
    torch.manual_seed(5)
    model = TimeTable()

    def crash(step: int, record: dict) -> None:
        if step == crash_after:
            raise RuntimeError("simulated crash")

    cfg = config(run_dir, steps=None, stages=STAGES, checkpoint_every=3)
    with contextlib.suppress(RuntimeError):
        run_training(cfg, model, ClassificationTask(), factory(24, noise=10.0), on_step=crash)
    return model


@pytest.mark.parametrize("crash_after", [4, 5])
def test_resume_across_a_stage_change_with_a_resized_parameter(tmp_path: Path, crash_after: int) -> None:
    reference = run(tmp_path / "ref")
    assert reference.time.shape == (4, 1, 1, 1) and reference.stages_seen == ["short", "long"]
    run(tmp_path / "run", crash_after)
    saved = latest_checkpoint(tmp_path / "run")
    # crash after 4: the checkpoint of step 3 ends stage "short"; after 5: step 3 too (every 3 steps), the
    # resumed run then redoes stage "long" from its start with the resize hook in between
    assert saved is not None and saved.step == 3 and saved.state["stage"] == 0
    resumed = run(tmp_path / "run")
    assert resumed.stages_seen == ["short", "long"]
    for key, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert [r["step"] for r in records(tmp_path / "run")] == list(range(1, 8))


def test_resume_inside_a_later_stage_loads_the_resized_table(tmp_path: Path) -> None:
    reference = run(tmp_path / "ref")
    run(tmp_path / "run", crash_after=7)  # after the last step, before the final checkpoint: newest is step 6
    saved = latest_checkpoint(tmp_path / "run")
    assert saved is not None and saved.step == 6 and saved.state["stage"] == 1
    assert saved.model["time"].shape == (4, 1, 1, 1)
    resumed = run(tmp_path / "run")
    assert resumed.stages_seen == ["long"]  # the hook of the checkpoint's stage runs first, then weights load
    for key, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
