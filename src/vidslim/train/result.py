"""What a finished training run reports: `TrainResult` (also RUN/summary.json) and its text for people."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn


@dataclass
class TrainResult:
    """What a finished run reports (also written to RUN/summary.json by rank 0)."""

    run_dir: Path
    steps: int
    trainable_params: int
    total_params: int
    skipped_videos: int
    eval_metrics: dict[str, float] = field(default_factory=dict)
    last_train: dict[str, float] = field(default_factory=dict)
    resumed_from: int | None = None
    wall_time_s: float = 0.0
    samples_per_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}

    def text(self) -> str:
        """A few lines for a person: steps, speed, parameters trained, videos skipped, last eval, folder."""
        lines = [f"finished {self.steps} steps in {self.wall_time_s:.1f} s ({self.samples_per_s:.1f} samples/s); "
                 f"trained {self.trainable_params:,} of {self.total_params:,} parameters",
                 f"broken videos skipped: {self.skipped_videos}"]
        if self.eval_metrics:
            lines.append("eval: " + ", ".join(f"{k}={v:.4g}" for k, v in self.eval_metrics.items()))
        lines.append(f"run folder: {self.run_dir}")
        return "\n".join(lines)


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts, shared parameters counted once."""
    params = {id(p): p for p in module.parameters()}.values()
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


__all__ = ["TrainResult", "count_parameters"]
