"""The curriculum laid out in optimiser steps: how many steps each stage lasts, where it starts, its batch.

A stage given in `steps` lasts that many; one given in `epochs` lasts round(epochs · ⌊N / batch⌋) steps (at
least one), N being the size of its training data, which is why planning may ask the loaders factory for a
stage's data before the stage starts. The learning-rate schedule runs over the total of all stages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vidslim.errors import ConfigError
from vidslim.train.config import Stage, TrainConfig


@dataclass(frozen=True)
class Plan:
    """Steps, first global step, global batch and accumulation of every stage."""

    stages: list[Stage]
    steps: list[int]
    starts: list[int]
    batch_sizes: list[int]
    accums: list[int]

    @property
    def total(self) -> int:
        return self.starts[-1] + self.steps[-1]


def plan_stages(config: TrainConfig, world_size: int, train_size: Callable[[int], int]) -> Plan:
    """Lay out `config.stages`; `train_size(i)` gives the number of training items of stage i (asked only for
    stages measured in epochs)."""
    steps, batch_sizes, accums = [], [], []
    for i, stage in enumerate(config.stages):
        label = stage.name or str(i)
        batch = stage.batch_size or config.batch_size
        accum = stage.grad_accum or config.grad_accum
        if batch % (accum * world_size):
            raise ConfigError(f"stage {label}: batch_size={batch} must be a multiple of grad_accum ({accum}) x the "
                              f"number of processes ({world_size}); change batch_size or grad_accum")
        if stage.steps is not None:
            steps.append(int(stage.steps))
        else:
            per_epoch = train_size(i) // batch
            if per_epoch < 1:
                raise ConfigError(f"stage {label}: the training data has fewer items than one batch of {batch}; "
                                  "lower batch_size or add data")
            steps.append(max(1, round(per_epoch * float(stage.epochs or 0))))
        batch_sizes.append(batch)
        accums.append(accum)
    starts = [sum(steps[:i]) for i in range(len(steps))]
    return Plan(list(config.stages), steps, starts, batch_sizes, accums)


__all__ = ["Plan", "plan_stages"]
