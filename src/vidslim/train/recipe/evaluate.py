"""Evaluate a run's model on its evaluation split and measure what that cost: `vidslim eval` parses its arguments
and prints; this is the recipe it calls.

    setup = prepare_run("classify", "run.yaml", [], info)
    result = evaluate_run(setup, meter=flops_of)     # {"metrics": {...}, "cost": {...}, "reduction": card, ...}

The FLOPs per clip are counted by `meter` (`vidslim.bench.flops.flops_of`, passed in by the command: bench sits
below train in the layer order) on the first FLOP_CLIPS clips, which for a content-adaptive reducer such as RLT
depend on the clips.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vidslim.errors import ConfigError
from vidslim.train.recipe.setup import Run

FLOP_CLIPS = 4
#: `meter(fn)` runs `fn()` once and returns (its result, the FLOPs it spent, fvcore convention)
Meter = Callable[[Callable[[], Any]], tuple[Any, int]]


def load_training_checkpoint(setup: Run, folder: Path) -> None:
    """Weights of a training checkpoint (RUN/checkpoints/step_N) into the model the config built."""
    from torch import nn

    from vidslim.train.checkpoint import MODEL_NAME, TASK_NAME, load_model_tensors, read_checkpoint

    loaded = read_checkpoint(folder)
    load_model_tensors(setup.model, loaded.model, f"{folder}/{MODEL_NAME}",
                       partial=loaded.state.get("weights") == "trainable")
    if isinstance(setup.task, nn.Module) and loaded.task:
        load_model_tensors(setup.task, loaded.task, f"{folder}/{TASK_NAME}", partial=False)


def gflops_per_clip(setup: Run, dataset: Any, collate: Any, meter: Meter) -> float:
    """FLOPs (fvcore convention) of the video encoder per clip, on the first FLOP_CLIPS clips of `dataset`."""
    from vidslim.train.batch import move_batch

    c = setup.config
    items = [dataset[i] for i in range(min(FLOP_CLIPS, len(dataset)))]
    batch = move_batch(collate(items), setup.info.device, c.video_normalize, c.video_layout)
    video = batch["video"]
    if video.dim() == 6:  # several views per item: every view is a clip
        video = video.flatten(0, 1)
    encoder = setup.model.encode_video if setup.kind == "retrieval" else setup.model
    model = setup.model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _, flops = meter(lambda: encoder(video))  # type: ignore[operator]
    finally:
        model.train(was_training)
    return flops / 1e9 / video.shape[0]


def evaluate_run(setup: Run, batch_size: int | None = None, meter: Meter | None = None) -> dict[str, Any]:
    """Metrics and cost of the run's model on its evaluation split (every rank takes part); GFLOPs per clip
    when a `meter` is given."""
    from vidslim.reduce.cards import reduction_card
    from vidslim.reduce.registry import entry_for
    from vidslim.train import evaluate

    c, info = setup.config, setup.info
    last = c.stages[-1]
    setup.on_stage(last)
    dataset, collate = setup.stage_data.split("eval", last), setup.stage_data.collate()
    if dataset is None:
        raise ConfigError("data.eval_split is null: name the split to evaluate (--split test)")
    setup.model.to(info.device)
    setup.task.to(info.device)
    batch = batch_size or c.eval_batch_size or max(1, c.batch_size // info.world_size)
    started = time.perf_counter()
    metrics = evaluate(setup.model, setup.task, dataset, collate, info, batch, c.precision, c.seed, c.num_workers,
                       c.video_normalize, c.video_layout)
    seconds = time.perf_counter() - started
    clips = len(dataset)
    cost: dict[str, Any] = {"seconds": seconds, "clips_per_s": clips / max(seconds, 1e-9), "processes":
                            info.world_size}
    if meter is not None and info.is_main:
        cost["gflops_per_clip"] = gflops_per_clip(setup, dataset, collate, meter)
        cost["flop_clips"] = min(FLOP_CLIPS, clips)
    reducers = getattr(setup.model, "reduction", ())
    card = reduction_card(reducers) if all(entry_for(r) is not None for r in reducers) else \
        [type(r).__name__ for r in reducers]
    return {"kind": setup.kind, "split": setup.data.eval_split, "clips": clips, "metrics": metrics, "cost": cost,
            "reduction": card}


__all__ = ["FLOP_CLIPS", "Meter", "evaluate_run", "gflops_per_clip", "load_training_checkpoint"]
