"""Learning-rate schedule (spec tempme §7.5) by hand, as the loop applies it, and the weight-decay groups."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from train_tiny import TinyClassifier, config, factory

from vidslim.tasks.classification import ClassificationTask
from vidslim.train import Stage, run_training
from vidslim.train.optim import decay_split, lr_at, warmup_steps


def test_tempme_msrvtt_schedule_values() -> None:
    total, peak = 7030, 6e-4
    warm = warmup_steps(total, 0.1)
    assert warm == 703
    assert lr_at(0, total, peak, warm) == 0.0
    assert lr_at(1, total, peak, warm) == pytest.approx(6e-4 / 703)
    assert lr_at(351, total, peak, warm) == pytest.approx(6e-4 * 351 / 703)
    assert lr_at(702, total, peak, warm) == pytest.approx(6e-4 * 702 / 703)
    assert lr_at(703, total, peak, warm) == pytest.approx(6e-4)  # cos(0) = 1
    # s - W = (S - W) / 3: ½(1 + cos(π/3)) = 0.75
    assert lr_at(703 + 6327 // 3, total, peak, warm) == pytest.approx(6e-4 * 0.75)
    assert lr_at(7029, total, peak, warm) == pytest.approx(6e-4 * 0.5 * (1 + math.cos(math.pi * 6326 / 6327)))
    assert lr_at(7030, total, peak, warm) == pytest.approx(0.0, abs=1e-18)


def test_small_schedule_with_floor_and_start() -> None:
    # S = 110, W = 10: halfway through the cosine is ½(peak + min); a quarter in is min + (peak-min)(½ + √2/4)
    assert lr_at(5, 110, 1.0, 10, start_lr=0.2) == pytest.approx(0.6)
    assert lr_at(60, 110, 1.0, 10, min_lr=0.1) == pytest.approx(0.55)
    assert lr_at(35, 110, 1.0, 10) == pytest.approx(0.5 + math.sqrt(2) / 4)
    assert lr_at(0, 110, 1.0, 0) == pytest.approx(1.0)  # no warm-up: starts at the peak
    assert warmup_steps(110, 0.1, explicit=7) == 7


def test_loop_applies_the_schedule_over_all_stages(tmp_path: Path) -> None:
    stages = [Stage("a", steps=3), Stage("b", steps=5)]
    cfg = config(tmp_path, steps=None, stages=stages, warmup_ratio=0.3, lr=0.02, min_lr=0.001)
    torch.manual_seed(0)
    run_training(cfg, TinyClassifier(), ClassificationTask(), factory(16))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in records if r["kind"] == "train"]
    expected = [lr_at(s, 8, 0.02, 2, min_lr=0.001) for s in range(8)]  # W = ⌊0.3 · 8⌋ = 2
    assert lrs == pytest.approx(expected)


def test_weight_decay_skips_biases_norms_and_1d() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.norm = nn.LayerNorm(4)
            self.scale = nn.Parameter(torch.tensor(1.0))
            self.table = nn.Parameter(torch.zeros(3, 4))
            self.frozen = nn.Linear(4, 4)
            self.frozen.requires_grad_(False)

        def no_weight_decay(self) -> set[str]:
            return {"table"}

    decay, no_decay = decay_split(Net())
    assert [n for n, _ in decay] == ["fc.weight"]
    assert sorted(n for n, _ in no_decay) == ["fc.bias", "norm.bias", "norm.weight", "scale", "table"]
