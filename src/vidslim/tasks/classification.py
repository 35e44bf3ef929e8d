"""Video classification: cross-entropy with label smoothing and soft targets, and the task object.

Loss. For logits z [B, C] and a target distribution q, CE = mean_b -Σ_c q_bc · log softmax(z_b)_c. Hard labels
[B] give one-hot q; soft targets [B, C] (mixup, cutmix, distillation) are used as given. Label smoothing ε
replaces q by (1 - ε)·q + ε/C (torch's definition, for hard and soft targets alike). Computed in float32.

Evaluation runs the model on every view of a multi-view batch ([B, V, ...] video: clips x crops) and averages
the softmax probabilities over the views before top-1 / top-5 (`tasks.metrics.classification_metrics`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.tasks.metrics import classification_metrics


def classification_loss(logits: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of [B, C] logits against int labels [B] or soft targets [B, C], with label smoothing."""
    if logits.dim() != 2:
        raise ConfigError(f"classification_loss: logits must be [B, C], got shape {tuple(logits.shape)}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ConfigError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if target.dim() == 1:
        if target.shape[0] != logits.shape[0]:
            raise ConfigError(f"classification_loss: {target.shape[0]} labels for {logits.shape[0]} rows")
        return F.cross_entropy(logits.float(), target.long(), label_smoothing=label_smoothing)
    if target.shape != logits.shape:
        raise ConfigError(f"classification_loss: soft targets must match the logits {tuple(logits.shape)}, got "
                          f"{tuple(target.shape)}")
    return F.cross_entropy(logits.float(), target.float(), label_smoothing=label_smoothing)



def _valid(batch: dict[str, Any]) -> Tensor:
    """uint8 [B]: 1 for items whose video loaded (a blank stand-in for a broken video gives 0)."""
    valid = batch.get("valid")
    if valid is None:
        return torch.ones(len(batch["video"]), dtype=torch.uint8, device=batch["video"].device)
    return valid.to(torch.uint8)

class ClassificationTask(nn.Module):
    """Video classification for `vidslim.train`: cross-entropy training, top-k evaluation.

    The model maps a video batch to logits [B, C] (`model(video)`). The target is `batch["soft_target"]` when
    present, else `batch["label"]`. video_dims: dimensions of a single-view batch (5 for [B, T, C, H, W] or
    [B, C, T, H, W]); a batch with one more is multi-view.
    """

    def __init__(self, label_smoothing: float = 0.0, topk: tuple[int, ...] = (1, 5), video_dims: int = 5) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"ClassificationTask: label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing
        self.topk = tuple(topk)
        self.video_dims = video_dims

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """Cross-entropy of one batch, plus the batch accuracy to log."""
        logits = model(batch["video"])
        target = batch.get("soft_target", batch.get("label"))
        if target is None:
            raise ConfigError("ClassificationTask: the batch has no 'label' (a classification dataset gives it)")
        loss = classification_loss(logits, target, self.label_smoothing)
        labels = target if target.dim() == 1 else target.argmax(-1)
        accuracy = (logits.detach().argmax(-1) == labels).float().mean() * 100.0
        return loss, {"train_top1": accuracy}

    def eval_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Per-item logits [B, V, C] (V = 1 for single-view batches) and labels."""
        video = batch["video"]
        if video.dim() == self.video_dims + 1:
            b, v = video.shape[:2]
            logits = model(video.flatten(0, 1)).float().reshape(b, v, -1)
        else:
            logits = model(video).float()[:, None]
        return {"logits": logits, "label": batch["label"], "valid": _valid(batch)}

    def eval_metrics(
        self,
        model: nn.Module,
        outputs: dict[str, Tensor],
        dataset: Any,
        *,
        gather: Callable[[dict[str, Tensor]], dict[str, Tensor]],
        rank: int,
        world_size: int,
    ) -> dict[str, float]:
        """top-k accuracy (views averaged as probabilities) and the eval loss of the gathered outputs."""
        logits, labels = outputs["logits"], outputs["label"].long()
        result = classification_metrics(logits, labels, ks=self.topk)
        mean_logits = logits.mean(1) if logits.shape[1] > 1 else logits[:, 0]
        result["loss"] = float(F.cross_entropy(mean_logits, labels))
        result["num_videos"] = float(len(labels))
        result["invalid_videos"] = float((outputs["valid"] == 0).sum())
        return result


__all__ = ["ClassificationTask", "classification_loss"]
