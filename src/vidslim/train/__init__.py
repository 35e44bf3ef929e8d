"""Training engine: any nn.Module + a task + a data factory -> a run folder with checkpoints and metrics.

    from vidslim.train import load_config, run_training, StageData
    from vidslim.tasks.retrieval import RetrievalTask
    config = load_config("run.yaml", ["lr=1e-4"])
    result = run_training(config, model, RetrievalTask(), lambda stage: StageData(train_ds, test_ds, Collate()))

Layout of the package:
- `config`: `TrainConfig`, curriculum `Stage`, YAML loading with key=value overrides.
- `task`: the `Task` protocol the loop calls, `StageData` (what the factory returns per stage).
- `loop`: `run_training` (AMP, accumulation, clipping, DDP, stages, logging, checkpoint and resume).
- `plan`: the stages laid out in optimiser steps.
- `optim`: AdamW with weight-decay groups, warm-up + cosine schedule, optimiser state by parameter name.
- `sampler`: data order as a function of (seed, stage, epoch, step), for exact resume and DDP parity.
- `seeding`: python, numpy and torch generators seeded together, and numpy in DataLoader workers.
- `checkpoint`: atomic safetensors + JSON checkpoints with content hashes, newest-intact lookup.
- `runlock`: one run at a time per run folder (a lock the kernel drops when its holder dies).
- `evaluation`: `evaluate`, sharded, gathered, deterministic evaluation.
- `distributed`, `batch`, `metrics_log`: torchrun set-up and gathers, moving batches, metrics files.

Names load lazily.
"""

from __future__ import annotations

from vidslim._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "TrainConfig": "vidslim.train.config",
    "Stage": "vidslim.train.config",
    "load_config": "vidslim.train.config",
    "config_from_dict": "vidslim.train.config",
    "parse_overrides": "vidslim.train.config",
    "Task": "vidslim.train.task",
    "StageData": "vidslim.train.task",
    "LoadersFactory": "vidslim.train.task",
    "run_training": "vidslim.train.loop",
    "TrainResult": "vidslim.train.result",
    "count_parameters": "vidslim.train.result",
    "seed_everything": "vidslim.train.seeding",
    "evaluate": "vidslim.train.evaluation",
    "lr_at": "vidslim.train.optim",
    "warmup_steps": "vidslim.train.optim",
    "DistInfo": "vidslim.train.distributed",
    "init_distributed": "vidslim.train.distributed",
    "latest_checkpoint": "vidslim.train.checkpoint",
    "read_checkpoint": "vidslim.train.checkpoint",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
