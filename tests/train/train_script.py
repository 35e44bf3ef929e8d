"""A small training run for the subprocess tests (SIGKILL + resume, torchrun parity).

    python train_script.py RUN_DIR --tasks cls,ret --steps 30 --checkpoint-every 5 --sleep 0.1
    python -m torch.distributed.run --nproc_per_node 2 train_script.py RUN_DIR --tasks cls,ret,ret-local

Each task trains in RUN_DIR/<task> with the same seed, data and initial weights as in the test process, so
runs can be compared step by step through their metrics.jsonl and final checkpoints.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_tiny import TinyClassifier, TinyDualEncoder, config, factory

from vidslim.tasks.classification import ClassificationTask
from vidslim.tasks.retrieval import RetrievalTask
from vidslim.train import init_distributed, run_training
from vidslim.train.distributed import shutdown


def prepare(task: str, run_dir: Path, steps: int = 4, batch: int = 8, accum: int = 1, checkpoint_every: int = 0,
            dropout: float = 0.0, noise: float = 0.0, items: int = 32, eval_items: int = 0) -> tuple:
    """(config, model, task, loaders factory) of one run, with fixed initial weights.

    cls: classification with label smoothing; ret: retrieval with a learnable temperature, evaluated over
    videos with two captions each; ret-local: the same with local_loss, evaluated over (video, caption) pairs.
    """
    torch.manual_seed(1234)
    if task == "cls":
        model, task_obj = TinyClassifier(dropout), ClassificationTask(label_smoothing=0.1)
    else:
        model = TinyDualEncoder(logit_scale=None)
        task_obj = RetrievalTask(logit_scale=math.log(1 / 0.07), learnable=True, local_loss=task == "ret-local")
    cfg = config(run_dir, steps=steps, batch_size=batch, grad_accum=accum, checkpoint_every=checkpoint_every,
                 eval_at_end=eval_items > 0, eval_batch_size=3)
    data = factory(items, noise=noise, eval_n=eval_items, eval_unit="video" if task == "ret" else "pair")
    return cfg, model, task_obj, data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--tasks", default="cls")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--accum", type=int, default=1)
    parser.add_argument("--checkpoint-every", type=int, default=0)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--eval-items", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    info = init_distributed()
    try:
        for name in args.tasks.split(","):
            cfg, model, task, data = prepare(name, Path(args.run_dir) / name, args.steps, args.batch, args.accum,
                                             args.checkpoint_every, args.dropout, args.noise, args.items,
                                             args.eval_items)
            run_training(cfg, model, task, data, dist_info=info,
                         on_step=(lambda step, record: time.sleep(args.sleep)) if args.sleep else None)
    finally:
        shutdown(info)


if __name__ == "__main__":
    main()
