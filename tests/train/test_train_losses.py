"""Task losses and task objects against values worked out by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from train_tiny import TinyClassifier, TinyDualEncoder

from vidslim.errors import ConfigError
from vidslim.tasks.classification import ClassificationTask, classification_loss
from vidslim.tasks.retrieval import LN100, RetrievalTask, contrastive_loss, gather_with_grad


def lse(*xs: float) -> float:
    return math.log(sum(math.exp(x) for x in xs))


def test_contrastive_loss_is_the_mean_of_both_directions() -> None:
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[2.0, 1.0], [0.5, 3.0]])
    # logits = t vᵀ = [[2, 0.5], [1, 3]] (no normalisation, scale e^0 = 1)
    rows = 0.5 * ((lse(2, 0.5) - 2) + (lse(1, 3) - 3))
    cols = 0.5 * ((lse(2, 1) - 2) + (lse(0.5, 3) - 3))
    loss = contrastive_loss(t, v, 0.0, gather=False, normalize=False)
    assert float(loss) == pytest.approx(0.5 * (rows + cols), rel=1e-6)


def test_contrastive_loss_scale_and_normalisation() -> None:
    t = torch.tensor([[3.0, 0.0], [0.0, 0.5]])  # normalised to the identity
    v = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert float(contrastive_loss(t, v, 0.0)) == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)
    assert float(contrastive_loss(t, v, LN100)) == pytest.approx(math.log(1 + math.exp(-100)), abs=1e-12)


def test_same_id_pairs_are_positives() -> None:
    t = torch.eye(3)
    v = torch.eye(3)
    ids = torch.tensor([7, 7, 9])
    # row 0 logits [1, 0, 0], targets [½, ½, 0]: -(½ log p0 + ½ log p1), p = e^x / (e + 2)
    row0 = -(0.5 * (1 - math.log(math.e + 2)) + 0.5 * (0 - math.log(math.e + 2)))
    row1 = row0  # logits [0, 1, 0], same targets
    row2 = -(1 - math.log(math.e + 2))
    expected = (row0 + row1 + row2) / 3  # the matrix is symmetric, so both directions agree
    assert float(contrastive_loss(t, v, 0.0, positive_ids=ids)) == pytest.approx(expected, rel=1e-6)


def test_gather_is_the_identity_for_one_process() -> None:
    x = torch.randn(3, 4, requires_grad=True)
    y, offset = gather_with_grad(x)
    assert y is x and offset == 0


def test_label_smoothing_by_hand() -> None:
    logits = torch.tensor([[0.0, math.log(3.0)]])  # softmax = [1/4, 3/4]
    p = [0.25, 0.75]
    assert float(classification_loss(logits, torch.tensor([1]))) == pytest.approx(-math.log(0.75))
    # ε = 0.2 over 2 classes: target [0.1, 0.9]
    smooth = -(0.1 * math.log(p[0]) + 0.9 * math.log(p[1]))
    assert float(classification_loss(logits, torch.tensor([1]), 0.2)) == pytest.approx(smooth, rel=1e-6)
    soft = torch.tensor([[0.5, 0.5]])
    assert float(classification_loss(logits, soft)) == pytest.approx(-0.5 * math.log(p[0] * p[1]), rel=1e-6)
    # smoothing a soft target: 0.8 · [½, ½] + 0.1 = [½, ½]
    assert float(classification_loss(logits, soft, 0.2)) == pytest.approx(-0.5 * math.log(p[0] * p[1]), rel=1e-6)
    with pytest.raises(ConfigError, match="label_smoothing"):
        classification_loss(logits, torch.tensor([1]), 1.0)


def test_retrieval_task_temperatures() -> None:
    model = TinyDualEncoder(logit_scale=LN100 + 1.0)
    batch = {"video": torch.rand(2, 2, 3, 8, 8), "text": ["a", "b"]}
    _, logs = RetrievalTask().loss(model, batch)
    assert float(logs["logit_scale"]) == pytest.approx(LN100)  # the model's scale, clamped in the loss
    RetrievalTask().after_step(model)
    assert float(model.logit_scale.detach()) == pytest.approx(LN100)  # and in place after the step
    fixed = RetrievalTask(logit_scale=math.log(20.0))
    assert len(list(fixed.parameters())) == 0
    learnable = RetrievalTask(logit_scale=math.log(1 / 0.07), learnable=True)
    loss, _ = learnable.loss(TinyDualEncoder(logit_scale=None), batch)
    loss.backward()
    assert learnable.logit_scale is not None and learnable.logit_scale.grad is not None
    with pytest.raises(ConfigError, match="logit_scale"):
        RetrievalTask().loss(TinyDualEncoder(logit_scale=None), batch)
    with pytest.raises(ConfigError, match="encode_video"):
        RetrievalTask(logit_scale=0.0).loss(TinyClassifier(), batch)


class Lookup(nn.Module):
    """Video i -> one-hot e_i (video = its index as a number); caption "k" -> e_k."""

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(video.long(), 4).float()

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return nn.functional.one_hot(torch.tensor([int(t) for t in texts]), 4).float()


def test_retrieval_eval_over_videos_with_several_captions() -> None:
    task = RetrievalTask(logit_scale=0.0)
    model = Lookup()
    outputs = task.eval_step(model, {"video": torch.arange(4), "valid": torch.ones(4, dtype=torch.bool)})
    # six captions: four describe their own video, caption 4 names video 2 but belongs to video 3
    dataset = SimpleNamespace(captions=["0", "1", "2", "3", "2", "1"], text_to_video=torch.tensor([0, 1, 2, 3, 3, 1]))
    metrics = task.eval_metrics(model, outputs, dataset, gather=lambda d: d, rank=0, world_size=1)
    assert metrics["t2v/R@1"] == pytest.approx(100 * 5 / 6)
    assert metrics["num_texts"] == 6 and metrics["num_videos"] == 4
    # video 2's caption ties with caption 4 (of video 3), counted above it: 3 of 4 videos rank first
    assert metrics["v2t/R@1"] == 75.0


def test_retrieval_eval_over_pairs_deduplicates_videos() -> None:
    task = RetrievalTask(logit_scale=0.0)
    ids = torch.tensor([0, 1, 1, 2])
    batch = {"video": ids, "text": ["0", "1", "1", "2"], "video_index": ids, "valid": torch.ones(4, dtype=torch.bool)}
    outputs = task.eval_step(Lookup(), batch)
    metrics = task.eval_metrics(Lookup(), outputs, None, gather=lambda d: d, rank=0, world_size=1)
    assert metrics["num_videos"] == 3 and metrics["t2v/R@1"] == 100.0 and metrics["v2t/R@1"] == 100.0


def test_classification_eval_averages_views() -> None:
    class ViewLogits(nn.Module):
        def forward(self, video: torch.Tensor) -> torch.Tensor:  # [N, T, C, H, W] -> class = first pixel
            return video[:, 0, 0, 0, :2]

    task = ClassificationTask(topk=(1,))
    video = torch.zeros(2, 3, 1, 1, 1, 2)  # 2 videos x 3 views
    video[0, :, 0, 0, 0] = torch.tensor([[5.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # views vote 1, 1 but view 0 is sure
    video[1, :, 0, 0, 0] = torch.tensor([0.0, 2.0])
    out = task.eval_step(ViewLogits(), {"video": video, "label": torch.tensor([0, 1]),
                                         "valid": torch.ones(2, dtype=torch.bool)})
    assert out["logits"].shape == (2, 3, 2)
    metrics = task.eval_metrics(ViewLogits(), out, None, gather=lambda d: d, rank=0, world_size=1)
    assert metrics["top1"] == 100.0  # softmax averaging: view 0's confidence wins for video 0
