"""AdamW over the trainable parameters, the warm-up + cosine schedule, and optimiser state by parameter name.

Weight decay applies to matrices only: biases, norm weights, every 1-D or 0-D parameter (logit scale,
gains) and names the model lists in `no_weight_decay()` (the timm convention: position tables, class
tokens) go to a group without decay (RLT's rule; TempMe decays its one group, which holds LoRA matrices).
torch's AdamW decays before the Adam update, p ← p(1 - lr·wd) - lr·u, where TempMe's decays after it,
p ← (p - lr·u)(1 - lr·wd); the two differ by lr²·wd·u, far below anything measurable.

Schedule (spec tempme §7.5), per optimiser step s = 0, 1, ... of S steps with W warm-up steps:
    s < W:  lr = start + (peak - start) · s / W
    s >= W: lr = min + (peak - min) · ½ (1 + cos(π · (s - W) / (S - W)))
with start = min = 0 in TempMe (peak 6e-4, W = ⌊0.1 S⌋). The schedule is a pure function of the step,
so it has no state to save beyond the step.

Optimiser state is saved keyed by parameter *name*, so it survives a rebuilt optimiser (a new stage whose
hook replaced a parameter keeps the state of every other one).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from vidslim.errors import CheckpointError, ConfigError

_SEP = "::"


def lr_at(step: int, total: int, peak: float, warmup: int, min_lr: float = 0.0, start_lr: float = 0.0) -> float:
    """Learning rate of optimiser step `step` (0-based) of `total`: linear warm-up, then half cosine."""
    if step < warmup:
        return start_lr + (peak - start_lr) * step / warmup
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0), span) / span
    return min_lr + (peak - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_steps(total: int, ratio: float, explicit: int | None = None) -> int:
    """⌊ratio · total⌋ warm-up steps, or `explicit` when given."""
    return int(explicit) if explicit is not None else math.floor(ratio * total)


def decay_split(model: nn.Module) -> tuple[list[tuple[str, nn.Parameter]], list[tuple[str, nn.Parameter]]]:
    """Trainable (name, parameter) pairs split into (with weight decay, without)."""
    skip_fn = getattr(model, "no_weight_decay", None)
    skip = set(skip_fn()) if callable(skip_fn) else set()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        plain = name.split(".")[-1]
        if p.ndim <= 1 or plain == "bias" or name in skip or plain in skip or _is_norm(model, name):
            no_decay.append((name, p))
        else:
            decay.append((name, p))
    return decay, no_decay


def _is_norm(model: nn.Module, name: str) -> bool:
    """Whether `name` belongs to a normalisation layer (a LayerNorm weight of any shape)."""
    owner = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
    return isinstance(owner, (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase, nn.RMSNorm))


def build_optimizer(
    named: Iterable[tuple[list[tuple[str, nn.Parameter]], float]],
    lr: float,
    betas: tuple[float, float],
    eps: float,
) -> torch.optim.AdamW:
    """AdamW over groups given as ([(name, param), ...], weight_decay); empty groups are left out.

    Each param group keeps its parameter names under "names" (used to save state by name).
    """
    groups = [{"params": [p for _, p in pairs], "names": [n for n, _ in pairs], "weight_decay": wd}
              for pairs, wd in named if pairs]
    if not groups:
        raise ConfigError("nothing to train: no parameter has requires_grad=True (unfreeze some, or use LoRA)")
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def export_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Optimiser state as (tensors keyed 'param_name::slot', JSON-able {'param_name::slot': value})."""
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, Any] = {}
    for group in optimizer.param_groups:
        for name, p in zip(group["names"], group["params"], strict=True):
            for slot, value in optimizer.state.get(p, {}).items():
                key = f"{name}{_SEP}{slot}"
                if isinstance(value, Tensor):
                    tensors[key] = value.detach().to("cpu").contiguous().clone()
                else:
                    scalars[key] = value
    return tensors, scalars


def import_state(optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor], scalars: dict[str, Any],
                 strict: bool = True) -> list[str]:
    """Load state saved by `export_state` into the parameters of the same names.

    Slots whose tensor shape no longer fits the parameter are dropped (their names are returned); a parameter
    without saved state starts fresh (it never had a gradient); with strict=True saved state for a parameter
    that is not trainable now is an error (a different model or different freezing).
    """
    saved: dict[str, dict[str, Any]] = {}
    for key, value in [*tensors.items(), *scalars.items()]:
        name, _, slot = key.rpartition(_SEP)
        saved.setdefault(name, {})[slot] = value
    current = optimizer.state_dict()
    state: dict[int, dict[str, Any]] = {}
    dropped: list[str] = []
    for group, packed in zip(optimizer.param_groups, current["param_groups"], strict=True):
        for name, p, index in zip(group["names"], group["params"], packed["params"], strict=True):
            slots = saved.pop(name, None)
            if slots is None:
                continue
            if any(isinstance(v, Tensor) and v.dim() > 0 and v.shape != p.shape for v in slots.values()):
                dropped.append(name)
                continue
            state[index] = slots
    if strict and saved:
        raise CheckpointError(f"optimizer state names parameters that are not trainable here ({sorted(saved)[:5]}); "
                              "resume with the same model and freezing, or start a new run folder")
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})
    return dropped


__all__ = ["build_optimizer", "decay_split", "export_state", "import_state", "lr_at", "set_lr", "warmup_steps"]
