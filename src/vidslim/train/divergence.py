"""Divergence never reaches the disk: the first non-finite loss is remembered on the device (no host sync per
step), parameters and optimiser state are checked before a checkpoint, and a diverged run stops with one line
naming what went wrong, the checkpoint it kept and what to change."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vidslim.errors import TrainingError
from vidslim.train import checkpoint as ckpt


class LossWatch:
    """Remembers the first step whose loss is not finite, as device tensors (read only where the loop syncs)."""

    def __init__(self) -> None:
        self.bad_step: Tensor | None = None  # -1: every loss so far was finite
        self.bad_loss: Tensor | None = None

    def see(self, loss: Tensor, step: int) -> None:
        """Record `loss` of `step` without a host sync."""
        if self.bad_step is None or self.bad_loss is None:
            self.bad_step = torch.full((), -1, dtype=torch.long, device=loss.device)
            self.bad_loss = torch.zeros((), dtype=torch.float32, device=loss.device)
        first = ~torch.isfinite(loss) & (self.bad_step < 0)
        self.bad_step = torch.where(first, step, self.bad_step)
        self.bad_loss = torch.where(first, loss.detach().float(), self.bad_loss)

    def local_problem(self, step: int, module: nn.Module, optimizer: Any) -> str | None:
        """What is not finite in this process (a step's loss, else a parameter, else optimiser state), or None."""
        if self.bad_step is not None and self.bad_loss is not None and int(self.bad_step) >= 0:
            return f"the loss became {float(self.bad_loss)} at step {int(self.bad_step)}"
        bad = ckpt.first_nonfinite({n: p.detach() for n, p in module.named_parameters()})
        if bad is not None:
            return f"parameter {bad} holds NaN or inf at step {step}"
        if optimizer is not None:
            slots = {f"{name}::{slot}": value
                     for group in optimizer.param_groups
                     for name, p in zip(group["names"], group["params"], strict=True)
                     for slot, value in optimizer.state.get(p, {}).items() if isinstance(value, Tensor)}
            bad = ckpt.first_nonfinite(slots)
            if bad is not None:
                return f"optimizer state {bad} holds NaN or inf at step {step}"
        return None


def diverged_error(what: str, config: Any, run_dir: Path, damaged: Collection[Path]) -> TrainingError:
    """The one-line error: what was not finite, the checkpoint kept, and what to change."""
    good = [(s, p) for s, p in ckpt.list_checkpoints(run_dir) if p not in damaged]
    kept = (f"the last good checkpoint {good[-1][1]} (step {good[-1][0]}) was kept" if good
            else "no checkpoint had been written yet")
    hint = f"lower lr (now {config.lr:g})"
    hint += (", enable grad clipping (grad_clip: 1.0)" if config.grad_clip is None
             else f" or grad_clip (now {config.grad_clip:g})")
    if config.precision == "fp16":
        hint += ", or use precision=bf16 or fp32"
    return TrainingError(f"training diverged: {what}; {kept}; {hint}, then run again to resume")


__all__ = ["LossWatch", "diverged_error"]
