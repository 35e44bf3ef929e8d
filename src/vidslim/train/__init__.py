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

from typing import TYPE_CHECKING

from vidslim._lazy import lazy_exports

if TYPE_CHECKING:  # the public names: what IDEs read; at run time each module is imported on first use
    from vidslim.train.checkpoint import latest_checkpoint as latest_checkpoint
    from vidslim.train.checkpoint import read_checkpoint as read_checkpoint
    from vidslim.train.config import Stage as Stage
    from vidslim.train.config import TrainConfig as TrainConfig
    from vidslim.train.config import config_from_dict as config_from_dict
    from vidslim.train.config import load_config as load_config
    from vidslim.train.config import parse_overrides as parse_overrides
    from vidslim.train.distributed import DistInfo as DistInfo
    from vidslim.train.distributed import init_distributed as init_distributed
    from vidslim.train.evaluation import evaluate as evaluate
    from vidslim.train.loop import run_training as run_training
    from vidslim.train.optim import lr_at as lr_at
    from vidslim.train.optim import warmup_steps as warmup_steps
    from vidslim.train.result import TrainResult as TrainResult
    from vidslim.train.result import count_parameters as count_parameters
    from vidslim.train.seeding import seed_everything as seed_everything
    from vidslim.train.task import LoadersFactory as LoadersFactory
    from vidslim.train.task import StageData as StageData
    from vidslim.train.task import Task as Task

__getattr__, __dir__, __all__ = lazy_exports(__name__)
