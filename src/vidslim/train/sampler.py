"""Batch samplers that make data order a pure function of (seed, stage, epoch, step) and resume exactly.

Training. Each epoch draws one permutation of the dataset from a generator seeded by (seed, stage, epoch).
Optimiser step s of the epoch takes the next `batch_size` items of the permutation; they are cut into
`grad_accum` micro-steps, and each micro-step into one contiguous slice per rank. So the union of what all
ranks see in a step, and the order in which gathered features line up, is the same whatever the number of
processes or accumulation steps: W processes with micro-batch m reproduce one process with batch W·m.
Items that do not fill a whole step at the end of an epoch are dropped (a contrastive batch must be full).
A resumed run starts the epoch's iteration at `start_step`, skipping exactly the batches already trained on.

Evaluation. Rank r takes the contiguous slice [r·N/W, (r+1)·N/W) of the dataset, nothing padded or repeated,
so gathering the outputs in rank order gives them back in dataset order.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from vidslim.errors import ConfigError


def epoch_seed(seed: int, stage: int, epoch: int) -> int:
    """The generator seed of one epoch of one stage (distinct for every (stage, epoch))."""
    return (int(seed) * 1_000_003 + int(stage) * 10_007 + int(epoch)) % (2**63 - 1)


class TrainBatchSampler(Sampler[list[int]]):
    """Micro-batches of this rank for one epoch; see the module docstring for the order."""

    def __init__(self, num_items: int, batch_size: int, grad_accum: int, rank: int, world_size: int, seed: int,
                 stage: int = 0, shuffle: bool = True) -> None:
        if batch_size % (grad_accum * world_size):
            raise ConfigError(f"batch_size={batch_size} must be a multiple of grad_accum ({grad_accum}) x the "
                              f"number of processes ({world_size}); change batch_size or grad_accum")
        self.micro = batch_size // (grad_accum * world_size)
        self.batch_size = batch_size
        self.grad_accum = grad_accum
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.stage = stage
        self.shuffle = shuffle
        self.num_items = num_items
        self.steps_per_epoch = num_items // batch_size
        if self.steps_per_epoch < 1:
            raise ConfigError(f"the training data has {num_items} items, fewer than one batch of {batch_size}; "
                              "lower batch_size or add data")
        self.epoch = 0
        self.start_step = 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Iterate epoch `epoch` from optimiser step `start_step` on (a resumed run skips the steps done)."""
        if not 0 <= start_step <= self.steps_per_epoch:
            raise ConfigError(f"start_step {start_step} is outside the epoch of {self.steps_per_epoch} steps")
        self.epoch = int(epoch)
        self.start_step = int(start_step)

    def permutation(self) -> torch.Tensor:
        """This epoch's order of the dataset items."""
        if not self.shuffle:
            return torch.arange(self.num_items)
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.stage, self.epoch))
        return torch.randperm(self.num_items, generator=generator)

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * self.grad_accum

    def __iter__(self) -> Iterator[list[int]]:
        order = self.permutation()
        first = self.start_step * self.batch_size
        last = self.steps_per_epoch * self.batch_size
        # [micro-steps, ranks, micro] -> this rank's micro-batches, in step order
        mine = order[first:last].view(-1, self.world_size, self.micro)[:, self.rank]
        yield from mine.tolist()


class EvalShardSampler(Sampler[int]):
    """Rank r's contiguous slice of the dataset indices, nothing repeated (see the module docstring)."""

    def __init__(self, num_items: int, rank: int, world_size: int) -> None:
        self.lo = num_items * rank // world_size
        self.hi = num_items * (rank + 1) // world_size

    def __len__(self) -> int:
        return self.hi - self.lo

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.lo, self.hi))


__all__ = ["EvalShardSampler", "TrainBatchSampler", "epoch_seed"]
