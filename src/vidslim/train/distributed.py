"""Several processes through torchrun: set-up from the environment, reductions and gathers for the loop.

`init_distributed()` starts the default process group when torchrun's variables are set (WORLD_SIZE > 1):
NCCL with one GPU per process (cuda:LOCAL_RANK) when CUDA is available, gloo on CPU. One process (no
WORLD_SIZE) runs without a group and every helper here degrades to the identity.
"""

from __future__ import annotations

import datetime
import gc
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import Tensor

from vidslim.devices import usable_device
from vidslim.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: rank, world size, local rank and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    started_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints, logs and the progress bar."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer (set by torchrun)") from None


def init_distributed(device: str | None = None, backend: str | None = None, timeout_s: float = 1800) -> DistInfo:
    """Join the process group torchrun describes (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR/PORT), if any.

    device: None picks cuda:LOCAL_RANK when CUDA is available, else cpu. backend: None picks nccl for CUDA,
    gloo otherwise. An already started group is reused (and not destroyed by `shutdown`).
    """
    world = _env_int("WORLD_SIZE", 1)
    local_rank = _env_int("LOCAL_RANK", 0)
    if device is None:
        dev = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    else:
        dev = usable_device(device, "device")
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device(f"cuda:{local_rank}")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev, started_group=False)
    if world <= 1:
        return DistInfo(0, 1, 0, dev)
    if backend is None:
        backend = "nccl" if dev.type == "cuda" else "gloo"
    kwargs = {"device_id": dev} if backend == "nccl" else {}
    dist.init_process_group(backend=backend, init_method="env://", timeout=datetime.timedelta(seconds=timeout_s),
                            **kwargs)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev, started_group=True)


def shutdown(info: DistInfo) -> None:
    """Destroy the process group if `init_distributed` started it.

    Every rank first waits for the others, and objects still holding the group (a DDP reducer in a
    reference cycle) are collected, so no gloo thread outlives the group: without this a rank can abort
    at exit ("terminate called without an active exception").
    """
    if info.started_group and dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
        gc.collect()


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op for one process)."""
    if info.distributed:
        dist.barrier()


def all_reduce_sum(values: Tensor, info: DistInfo) -> Tensor:
    """Sum of `values` over ranks (a new tensor; float64 sums stay exact for counts)."""
    if not info.distributed:
        return values.clone()
    out = values.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def broadcast_object(obj: object, info: DistInfo) -> object:
    """Rank 0's `obj` on every rank (used for small decisions such as which checkpoint to resume)."""
    if not info.distributed:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def all_gather_objects(obj: object, info: DistInfo) -> list[object]:
    """Every rank's `obj`, in rank order (small things: RNG states for the checkpoint)."""
    if not info.distributed:
        return [obj]
    out: list[object] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def gather_rows(outputs: dict[str, Tensor], info: DistInfo) -> dict[str, Tensor]:
    """Concatenate each tensor's rows over ranks in rank order (row counts may differ between ranks).

    Every rank gets the result. Keys must be the same on every rank. bool tensors travel as uint8.
    """
    if not info.distributed:
        return outputs
    keys = sorted(outputs)
    counts = torch.tensor([outputs[k].shape[0] for k in keys], dtype=torch.long, device=info.device)
    all_counts = [torch.empty_like(counts) for _ in range(info.world_size)]
    dist.all_gather(all_counts, counts)
    result = {}
    for i, key in enumerate(keys):
        x = outputs[key]
        is_bool = x.dtype == torch.bool
        x = x.to(info.device, torch.uint8 if is_bool else x.dtype).contiguous()
        sizes = [int(c[i]) for c in all_counts]
        largest = max(sizes)
        if x.shape[0] < largest:
            x = torch.cat([x, x.new_zeros(largest - x.shape[0], *x.shape[1:])])
        parts = [torch.empty_like(x) for _ in sizes]
        dist.all_gather(parts, x)
        joined = torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)])
        result[key] = joined.bool() if is_bool else joined
    return result


__all__ = ["DistInfo", "all_gather_objects", "all_reduce_sum", "barrier", "broadcast_object", "gather_rows",
           "init_distributed", "shutdown"]
