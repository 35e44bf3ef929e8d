"""`vidslim train retrieval|classify CONFIG.yaml [key=value ...]`: fine-tune a model from a YAML run config.

    vidslim train classify configs/synth_classify_rlt.yaml
    vidslim train retrieval configs/msrvtt_tempme_b32.yaml data.video_root=/data/msrvtt/videos lr=3e-4
    torchrun --nproc_per_node 4 -m vidslim.cli.main train retrieval configs/msrvtt_tempme_b32.yaml

What a run does: AdamW with a linear warm-up then a half cosine, gradient clipping, autocast (`precision`),
gradient accumulation, LoRA or full fine-tuning, curriculum stages, seeded and resumable (`vidslim.train`).
Checkpoints are written atomically every `checkpoint_every` steps to RUN/checkpoints/, and a run started again
with the same config resumes from the newest complete one (a killed run loses at most that many steps).
Metrics go to RUN/metrics.jsonl, RUN/train.csv and RUN/eval.csv; a progress bar shows loss, throughput and ETA.
At the end the model is written to RUN/model (`vidslim.save_model`: weights, config, reduction card, LoRA,
tokenizer), which `vidslim.load_model` and `vidslim eval` read back as the same model.

The run config (YAML; every key may be overridden on the command line as key=value, dotted for nesting,
e.g. `model.reduction=[{rlt: {tau: 0.05}}]`, `stages.1.steps=500`, `data.frames=16`):

    run_dir: runs/NAME          # checkpoints, metrics, summary.json, model/
    seed: 42
    steps: 1000                 # or epochs: 5 (of the training data), or stages: [...] (below)
    batch_size: 128             # the global batch of one optimiser step (split over processes and accumulation)
    grad_accum: 1
    lr: 6.0e-4                  # peak learning rate
    min_lr: 0.0                 # the cosine ends here
    warmup_ratio: 0.1           # or warmup_steps: N
    weight_decay: 0.2           # AdamW, not on biases, norms and 1-d tensors
    betas: [0.9, 0.999]
    eps: 1.0e-6
    grad_clip: 1.0              # global norm; null: off
    precision: fp32             # fp32 | bf16 | fp16 (CUDA only)
    deterministic: false
    num_workers: 0              # DataLoader processes
    eval_batch_size: null       # default: batch_size / processes
    video_normalize: clip       # left out: the model family's (clip for CLIP, imagenet for the video ViT)
    video_layout: TCHW          # left out: the model family's (TCHW for CLIP, CTHW for the video ViT)
    log_every: 10
    eval_every: 0               # steps between evaluations; 0: only at the end (eval_at_end: true)
    checkpoint_every: 500
    keep_checkpoints: 3
    checkpoint_weights: all     # or trainable (LoRA: the frozen rest comes from model.checkpoint again)
    resume: true
    device: null                # default: cuda:LOCAL_RANK when CUDA is available, else cpu
    stages:                     # curriculum (optional): each with steps or epochs and overrides
      - {name: short, steps: 500, overrides: {frames: 4, keep: 0.7}}
      - {name: long, steps: 500, overrides: {frames: 8, keep: 0.6}}
    model: {...}                # vidslim.train.recipe.model: name or checkpoint, config, reduction, finetune, tokenizer
    data: {...}                 # vidslim.train.recipe.data: name, annotation, video_root, splits, frames, size, ...
    task: {}                    # RetrievalTask / ClassificationTask arguments, e.g. {label_smoothing: 0.1}

Stage overrides: `frames` changes the clip length the data is read with; `frames`, `keep`, `text_keep`, `block`,
`local`, `random` go to the model through `vidslim.reduce.curriculum.apply_stage` (position tables, TokenPrune,
SparseAttention). Worked examples: configs/synth_retrieval_tempme.yaml, configs/synth_classify_rlt.yaml,
configs/msrvtt_tempme_b32.yaml.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from vidslim.train.recipe.setup import MODEL_DIR, prepare_run, read_tree

KIND_HELP = "retrieval (text-video, contrastive) or classify (video classes, cross-entropy)"


def add_parser(subparsers: Any) -> None:
    """Register `train` on the `vidslim` command."""
    parser = subparsers.add_parser(
        "train", help="fine-tune a model from a YAML run config (resumable; torchrun for several processes)",
        description="Train a model for text-video retrieval or video classification as the YAML run CONFIG says "
        "(schema: `python -m pydoc vidslim.cli.train`, examples in configs/). A run started again resumes from "
        "its newest checkpoint.",
    )
    parser.add_argument("kind", choices=("retrieval", "classify"), help=KIND_HELP)
    parser.add_argument("config", metavar="CONFIG", help="YAML run config")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. lr=1e-4 "
                        "data.frames=16 model.reduction=[{rlt: {tau: 0.1}}]")
    parser.add_argument("--json", action="store_true", help="no progress bar; print the run summary as JSON")
    parser.set_defaults(func=run)


def export_model(model: Any, run_dir: Path) -> Path:
    """save_model into RUN/model, atomically: written beside it, then swapped in."""
    from vidslim.models.loading import save_model
    from vidslim.models.stale_temp import TEMP_PREFIX, remove_stale_temp_folders

    remove_stale_temp_folders(run_dir)  # what a killed export left behind (dead PID, untouched for a minute)
    final = run_dir / MODEL_DIR
    tmp = run_dir / f"{TEMP_PREFIX}{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, tmp)
    if final.exists():
        old = run_dir / f".{MODEL_DIR}-old-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


def run(args: argparse.Namespace) -> int:
    """Build everything from the config, train (resuming when a checkpoint exists), export the model."""
    from vidslim.train import TrainConfig, init_distributed
    from vidslim.train.distributed import shutdown
    from vidslim.train.runlock import hold_run_dir

    overrides = list(args.overrides)
    if args.json or not (sys.stderr.isatty() or any(o.startswith("progress=") for o in overrides)):
        overrides.append("progress=false")  # a progress bar only on a terminal: in a log it is noise
    logging.basicConfig(level=logging.INFO if not args.json else logging.WARNING, format="%(message)s")
    tree = read_tree(args.config, overrides)
    info = init_distributed(None if tree.get("device") is None else str(tree["device"]))
    try:
        with hold_run_dir(str(tree.get("run_dir", TrainConfig.run_dir)), info):  # the whole command owns RUN
            _train(args, overrides, info)
    finally:
        shutdown(info)
    return 0


def _train(args: argparse.Namespace, overrides: list[str], info: Any) -> None:
    """Build, train, export and summarise, inside the run folder's lock."""
    from vidslim.train import run_training
    from vidslim.train.distributed import barrier
    from vidslim.train.recipe.model import describe

    setup = prepare_run(args.kind, args.config, overrides, info)
    if info.is_main and not args.json:
        print(f"{args.kind}: {type(setup.model).__name__}, {describe(setup.model)}", file=sys.stderr)
    result = run_training(setup.config, setup.model, setup.task, setup.stage_data, on_stage=setup.on_stage,
                          dist_info=info)
    if info.is_main:
        folder = export_model(setup.model, setup.run_dir)
        summary = {**result.summary(), "model_dir": str(folder), "kind": args.kind}
        (setup.run_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        if args.json:
            print(json.dumps(summary, indent=1))
        else:
            if not setup.config.progress:  # the loop prints its summary only beside a progress bar
                print(result.text())
            print(f"model written to {folder} (vidslim eval {args.kind} {args.config} evaluates it)")
    barrier(info)


__all__ = ["add_parser", "export_model", "run"]
