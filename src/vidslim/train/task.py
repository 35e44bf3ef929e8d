"""What the training loop asks of a task and of the data: the `Task` protocol and `StageData`.

A task (`vidslim.tasks.RetrievalTask`, `ClassificationTask`, or your own) turns a model and a batch into a
loss, and evaluation outputs into metrics. It may be an `nn.Module` with parameters of its own (a learnable
temperature); they are trained, synchronised and checkpointed with the model.

    loss(model, batch) -> (loss, {name: scalar tensor to log})
    eval_step(model, batch) -> {name: tensor with one row per item}
    eval_metrics(model, outputs, dataset, *, gather, rank, world_size) -> {name: float}
    after_step(model)                      optional, after every optimiser step (clamps, EMA, ...)

`outputs` holds every rank's rows in dataset order; `gather(dict)` concatenates rows over ranks for tasks that
compute more outputs there (the retrieval task encodes the captions split across ranks).

The data comes from a factory called once per curriculum stage: `factory(stage) -> StageData`, with the
stage's overrides (frames, keep ratio, ...) deciding how its datasets read videos. The loop builds the
loaders itself (samplers for exact resume and for several processes, workers, seeds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn
from torch.utils.data import Dataset

from vidslim.train.config import Stage


@runtime_checkable
class Task(Protocol):
    """The loop's view of a task (see the module docstring)."""

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]: ...

    def eval_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, Tensor]: ...

    def eval_metrics(self, model: nn.Module, outputs: dict[str, Tensor], dataset: Any, *,
                     gather: Callable[[dict[str, Tensor]], dict[str, Tensor]], rank: int,
                     world_size: int) -> dict[str, float]: ...


@dataclass
class StageData:
    """The datasets of one stage and how to batch them (`collate`, e.g. `vidslim.data.Collate()`)."""

    train: Dataset[Any]
    eval: Dataset[Any] | None = None
    collate: Callable[[list[Any]], Any] | None = None


LoadersFactory = Callable[[Stage], StageData]


class TrainStep(nn.Module):
    """model + task as one module, so DDP wraps (and synchronises) both and sees the whole forward."""

    def __init__(self, model: nn.Module, task: Task) -> None:
        super().__init__()
        self.model = model
        self.task = task  # registered as a submodule when the task is an nn.Module

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        return self.task.loss(self.model, batch)


__all__ = ["LoadersFactory", "StageData", "Task", "TrainStep"]
