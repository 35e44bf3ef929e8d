"""The loop: accumulation, broken videos, frozen parameters, bf16, NaN, evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from train_tiny import NUM_CLASSES, TinyClassifier, ToyVideos, config, factory

from vidslim.data.builders import labels
from vidslim.data.collate import Collate
from vidslim.data.loading import VideoConfig
from vidslim.data.synth import make_synthetic
from vidslim.errors import ConfigError, TrainingError
from vidslim.tasks.classification import ClassificationTask
from vidslim.train import StageData, evaluate, run_training
from vidslim.train.distributed import DistInfo


def records(run_dir: Path, kind: str = "train") -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def trained(run_dir: Path, **overrides: Any) -> nn.Module:
    torch.manual_seed(0)
    model = TinyClassifier()
    run_training(config(run_dir, **overrides), model, ClassificationTask(label_smoothing=0.1), factory(32))
    return model


def test_gradient_accumulation_equals_the_large_batch(tmp_path: Path) -> None:
    big = trained(tmp_path / "big", grad_accum=1)
    small = trained(tmp_path / "small", grad_accum=4)  # 4 micro-batches of 2
    for (name, a), b in zip(big.state_dict().items(), small.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-6, msg=name)
    big_log, small_log = records(tmp_path / "big"), records(tmp_path / "small")
    assert [r["loss"] for r in small_log] == pytest.approx([r["loss"] for r in big_log], abs=1e-6)
    assert [r["grad_norm"] for r in small_log] == pytest.approx([r["grad_norm"] for r in big_log], rel=1e-5)


@pytest.mark.parametrize("workers", [0, 2])
def test_broken_videos_are_skipped_and_counted(tmp_path: Path, workers: int) -> None:
    # 2 epochs over 32 items, 3 broken (10 and 11 in a row: item 10 passes over 2, item 11 over 1)
    broken = frozenset({3, 10, 11})
    torch.manual_seed(0)
    result = run_training(config(tmp_path, steps=8, num_workers=workers), TinyClassifier(), ClassificationTask(),
                          factory(32, broken=broken))
    per_epoch = 1 + 2 + 1
    assert result.steps == 8 and result.skipped_videos == 2 * per_epoch
    assert json.loads((tmp_path / "summary.json").read_text())["skipped_videos"] == 2 * per_epoch
    assert records(tmp_path)[-1]["skipped_videos"] == 2 * per_epoch


def test_real_dataset_with_a_broken_file_trains_to_the_end(tmp_path: Path) -> None:
    annotations = make_synthetic(tmp_path / "synth", num_videos=6, fps=4, seconds=1, size=16, seed=0)
    (tmp_path / "synth" / "video_0002.mp4").write_bytes(b"not a video")
    dataset = labels(annotations, annotations.parent, config=VideoConfig(num_frames=2, size=8, train=True, seed=0))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3 * 8 * 8, 8)

        def forward(self, video: torch.Tensor) -> torch.Tensor:
            return self.fc(video.mean(1).flatten(1))

    cfg = config(tmp_path / "run", steps=6, batch_size=2, video_normalize="imagenet")
    result = run_training(cfg, Net(), ClassificationTask(), lambda stage: StageData(dataset, None, Collate()))
    assert result.steps == 6 and result.skipped_videos == 2  # 3 steps per epoch: the broken one met twice


def test_only_trainable_parameters_change(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TinyClassifier()
    model.trunk.proj.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = run_training(config(tmp_path, checkpoint_weights="trainable"), model, ClassificationTask(), factory(16))
    frozen = model.trunk.proj.weight.numel() + model.trunk.proj.bias.numel()
    assert result.trainable_params == result.total_params - frozen
    assert torch.equal(model.trunk.proj.weight, before["trunk.proj.weight"])
    assert not torch.equal(model.trunk.out.weight, before["trunk.out.weight"])
    from vidslim.train.checkpoint import latest_checkpoint

    saved = latest_checkpoint(tmp_path)
    assert saved is not None and "trunk.proj.weight" not in saved.model and "trunk.out.weight" in saved.model


def test_bf16_autocast_on_cpu(tmp_path: Path) -> None:
    model = trained(tmp_path, precision="bf16")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records(tmp_path))


def test_a_nan_loss_stops_with_a_clear_error(tmp_path: Path) -> None:
    class Broken(TinyClassifier):
        def forward(self, video: torch.Tensor) -> torch.Tensor:
            return super().forward(video) * float("nan")

    with pytest.raises(TrainingError, match="step 1"):
        run_training(config(tmp_path), Broken(), ClassificationTask(), factory(16))


def test_bad_batch_size_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="multiple of grad_accum"):
        run_training(config(tmp_path, batch_size=6, grad_accum=4), TinyClassifier(), ClassificationTask(), factory(16))


def test_evaluation_is_deterministic_and_leaves_the_rng_alone() -> None:
    class Noisy(TinyClassifier):
        def forward(self, video: torch.Tensor) -> torch.Tensor:  # stochastic, like SViTT's random blocks
            return super().forward(video) + 3 * torch.randn(video.shape[0], NUM_CLASSES)

    torch.manual_seed(0)
    model = Noisy()
    info = DistInfo()
    state = torch.get_rng_state()
    runs = [evaluate(model, ClassificationTask(), ToyVideos(12), Collate(), info, batch_size=5, seed=s)
            for s in (1, 1, 2)]
    assert runs[0] == runs[1] and runs[0]["num_videos"] == 12
    assert runs[0]["loss"] != runs[2]["loss"]
    assert torch.equal(torch.get_rng_state(), state)
    assert model.training  # back in training mode


def test_eval_during_and_after_training(tmp_path: Path) -> None:
    torch.manual_seed(0)
    result = run_training(config(tmp_path, steps=4, eval_every=2, eval_at_end=True), TinyClassifier(),
                          ClassificationTask(), factory(16, eval_n=6))
    assert [r["step"] for r in records(tmp_path, "eval")] == [2, 4]  # not twice at the end
    assert result.eval_metrics["num_videos"] == 6 and (tmp_path / "eval.csv").is_file()
