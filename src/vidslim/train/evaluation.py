"""Evaluation sharded across ranks, gathered back in dataset order, deterministic and side-effect free.

Each rank runs `task.eval_step` on its contiguous slice of the dataset (`EvalShardSampler`), the per-item
outputs are gathered in rank order (= dataset order) and `task.eval_metrics` turns them into numbers on every
rank. The model runs in eval mode under no_grad and autocast, inside `torch.random.fork_rng` seeded with
`seed`: stochastic parts (SViTT's random attention blocks) draw the same pattern at every evaluation, and the
training generators are left exactly as they were, so evaluating never changes what training does next.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from vidslim.errors import ConfigError
from vidslim.train.batch import move_batch
from vidslim.train.distributed import DistInfo, all_reduce_sum, gather_rows
from vidslim.train.sampler import EvalShardSampler
from vidslim.train.task import Task

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """torch.autocast for `precision` ("fp32" = off) on `device`'s type; fp16 needs CUDA."""
    if precision not in AUTOCAST_DTYPES:
        raise ConfigError(f"precision must be one of {sorted(AUTOCAST_DTYPES)}, got {precision!r}")
    dtype = AUTOCAST_DTYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    if dtype == torch.float16 and device.type != "cuda":
        raise ConfigError("precision=fp16 needs a CUDA device; use precision=bf16 on CPU")
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def frozen_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Run the body with all torch generators seeded by `seed`, restoring the previous states after."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _concat(rows: dict[str, list[Tensor]]) -> dict[str, Tensor]:
    return {k: torch.cat(v) for k, v in rows.items()}


def evaluate(
    model: nn.Module,
    task: Task,
    dataset: Dataset[Any],
    collate: Callable[[list[Any]], Any] | None,
    info: DistInfo,
    batch_size: int,
    precision: str = "fp32",
    seed: int = 0,
    num_workers: int = 0,
    video_normalize: str | None = None,
    video_layout: str = "TCHW",
) -> dict[str, float]:
    """Metrics of `task` for `model` on `dataset`, computed across every rank (same result on each).

    The returned dict also holds `skipped_videos`: broken videos the loader replaced or blanked.
    """
    num_items = len(dataset)  # type: ignore[arg-type]
    if num_items < info.world_size:
        raise ConfigError(f"the evaluation data has {num_items} items, fewer than the {info.world_size} processes")
    loader = DataLoader(dataset, batch_size=batch_size, sampler=EvalShardSampler(num_items, info.rank,
                        info.world_size), num_workers=num_workers, collate_fn=collate,
                        pin_memory=info.device.type == "cuda", generator=torch.Generator().manual_seed(seed))
    was_training = model.training
    model.eval()
    rows: dict[str, list[Tensor]] = {}
    skipped = 0
    try:
        with frozen_rng(seed, info.device), torch.no_grad(), autocast(info.device, precision):
            for batch in loader:
                skipped += int(batch.get("skipped", 0)) if isinstance(batch, dict) else 0
                batch = move_batch(batch, info.device, video_normalize, video_layout)
                for key, value in task.eval_step(model, batch).items():
                    rows.setdefault(key, []).append(value.detach())
            outputs = gather_rows(_concat(rows), info)
            metrics = task.eval_metrics(model, outputs, dataset, gather=lambda d: gather_rows(d, info),
                                        rank=info.rank, world_size=info.world_size)
    finally:
        model.train(was_training)
    total = all_reduce_sum(torch.tensor([skipped], dtype=torch.float64, device=info.device), info)
    metrics["skipped_videos"] = float(total[0])
    return metrics


__all__ = ["autocast", "evaluate", "frozen_rng"]
