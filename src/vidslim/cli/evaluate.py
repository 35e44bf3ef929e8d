"""`vidslim eval retrieval|classify CONFIG.yaml [key=value ...]`: metrics of a model next to what they cost.

    vidslim eval classify configs/synth_classify_rlt.yaml                       # RUN/model of that config
    vidslim eval classify configs/synth_classify_rlt.yaml --checkpoint runs/x/checkpoints/step_00000200 --json
    vidslim eval retrieval configs/msrvtt_tempme_b32.yaml model.reduction=[]    # the same weights, dense
    torchrun --nproc_per_node 4 -m vidslim.cli.main eval retrieval configs/msrvtt_tempme_b32.yaml

The config is the training one (schema in `vidslim.cli.train`); evaluation reads its `data.eval_split` (or
`--split`) with evaluation sampling, at the clip length of the last stage. What is evaluated:
- `--checkpoint PATH`: a vidslim model folder (RUN/model; `load_model` rebuilds its reducers from the reduction
  card), a run folder (its model/, else its newest training checkpoint), a training checkpoint folder
  (RUN/checkpoints/step_N: the model is built as the config says and the checkpoint's weights loaded), or a
  pretrained checkpoint `load_model` reads;
- without it, the config's run folder the same way, and when that holds nothing yet, the model exactly as the
  config builds it (a pretrained checkpoint zero-shot, say).
`model.reduction` in the config (or on the command line) replaces the saved reducers: evaluate a dense-trained
model with RLT, or an RLT-trained one dense (`model.reduction=[]`).

Evaluation is deterministic (fixed seed, eval mode, no augmentation) and sharded over torchrun's processes.
The cost next to the metrics: wall-clock seconds and clips per second of the whole evaluation, and the FLOPs of
the video encoder per clip (fvcore convention, `vidslim.bench.flops`) measured on the first clips, which for a
content-adaptive reducer such as RLT depends on the clips. `--json` prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch

from vidslim.train.recipe.setup import Run, prepare_run, read_tree, resolve_checkpoint

FLOP_CLIPS = 4


def add_parser(subparsers: Any) -> None:
    """Register `eval` on the `vidslim` command."""
    parser = subparsers.add_parser(
        "eval", help="evaluate a model (retrieval R@K or classification top-k) and measure what it costs",
        description="Evaluate the model of a YAML run CONFIG (its run folder's model, a checkpoint, or the model as "
        "the config builds it) on the config's evaluation split: metrics, seconds, clips/s and GFLOPs per clip.",
    )
    parser.add_argument("kind", choices=("retrieval", "classify"), help="retrieval (R@1/5/10, MdR, MnR) or "
                        "classify (top-1/5)")
    parser.add_argument("config", metavar="CONFIG", help="YAML run config (the one the model was trained with)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. "
                        "model.reduction=[] data.frames=16")
    parser.add_argument("--checkpoint", metavar="PATH", default=None, help="model folder, run folder or training "
                        "checkpoint (default: the config's run folder)")
    parser.add_argument("--split", default=None, help="evaluation split (default: the config's data.eval_split)")
    parser.add_argument("--batch-size", type=int, default=None, help="clips per batch (default: eval_batch_size)")
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP count")
    parser.add_argument("--out", metavar="FILE", default=None, help="also write the JSON result to FILE")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def _load_training_checkpoint(setup: Run, folder: Path) -> None:
    """Weights of a training checkpoint (RUN/checkpoints/step_N) into the model the config built."""
    from torch import nn

    from vidslim.train.checkpoint import MODEL_NAME, TASK_NAME, load_model_tensors, read_checkpoint

    loaded = read_checkpoint(folder)
    load_model_tensors(setup.model, loaded.model, f"{folder}/{MODEL_NAME}",
                       partial=loaded.state.get("weights") == "trainable")
    if isinstance(setup.task, nn.Module) and loaded.task:
        load_model_tensors(setup.task, loaded.task, f"{folder}/{TASK_NAME}", partial=False)


def gflops_per_clip(setup: Run, dataset: Any, collate: Any) -> float:
    """FLOPs (fvcore convention) of the video encoder per clip, on the first FLOP_CLIPS clips of `dataset`."""
    from vidslim.bench.flops import count_flops
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
        report = count_flops(encoder, video)  # type: ignore[arg-type]
    finally:
        model.train(was_training)
    return report.gflops / video.shape[0]


def evaluate_run(setup: Run, batch_size: int | None = None, flops: bool = True) -> dict[str, Any]:
    """Metrics and cost of the run's model on its evaluation split (every rank takes part)."""
    from vidslim.reduce.cards import reduction_card
    from vidslim.reduce.registry import entry_for
    from vidslim.train import evaluate

    c, info = setup.config, setup.info
    last = c.stages[-1]
    setup.on_stage(last)
    dataset, collate = setup.stage_data.split("eval", last), setup.stage_data.collate()
    if dataset is None:
        from vidslim.errors import ConfigError

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
    if flops and info.is_main:
        cost["gflops_per_clip"] = gflops_per_clip(setup, dataset, collate)
        cost["flop_clips"] = min(FLOP_CLIPS, clips)
    reducers = getattr(setup.model, "reduction", ())
    card = reduction_card(reducers) if all(entry_for(r) is not None for r in reducers) else \
        [type(r).__name__ for r in reducers]
    return {"kind": setup.kind, "split": setup.data.eval_split, "clips": clips, "metrics": metrics, "cost": cost,
            "reduction": card}


def _table(result: dict[str, Any]) -> str:
    lines = [f"{result['kind']} on split {result['split']!r} ({result['clips']} clips), model: "
             f"{result.get('checkpoint') or 'as configured'}, reduction: {json.dumps(result['reduction'])}"]
    for name, value in result["metrics"].items():
        lines.append(f"  {name:<24} {value:.4g}")
    cost = result["cost"]
    line = f"  cost: {cost['seconds']:.1f} s, {cost['clips_per_s']:.1f} clips/s on {cost['processes']} process(es)"
    if "gflops_per_clip" in cost:
        line += f", {cost['gflops_per_clip']:.4g} GFLOPs per clip"
    return "\n".join([*lines, line])


def run(args: argparse.Namespace) -> int:
    """Load the model the arguments name, evaluate it, print metrics and cost."""
    from vidslim.train import init_distributed
    from vidslim.train.distributed import shutdown

    if args.batch_size is not None and args.batch_size < 1:
        from vidslim.errors import ConfigError

        raise ConfigError(f"--batch-size must be at least 1 clip, got {args.batch_size}")
    if args.out:
        from vidslim.io.paths import output_file

        output_file(args.out, "--out")
    overrides = list(args.overrides)
    if args.split is not None:
        overrides.append(f"data.eval_split={args.split}")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    tree = read_tree(args.config, overrides)
    info = init_distributed(None if tree.get("device") is None else str(tree["device"]))
    try:
        what, path = resolve_checkpoint(args.checkpoint, Path(str(tree.get("run_dir", "runs/default"))))
        setup = prepare_run(args.kind, args.config, overrides, info, checkpoint=path if what == "model" else None)
        if what == "train":
            _load_training_checkpoint(setup, path)  # type: ignore[arg-type]
        elif what == "none" and info.is_main:
            print(f"no model in {tree.get('run_dir')}: evaluating the model as the config builds it",
                  file=sys.stderr)
        with torch.no_grad():
            result = {"checkpoint": str(path) if path is not None else None,
                      **evaluate_run(setup, args.batch_size, not args.no_flops)}
        if info.is_main:
            text = json.dumps(result, indent=1)
            if args.out:
                Path(args.out).write_text(text + "\n")
            print(text if args.json else _table(result))
    finally:
        shutdown(info)
    return 0


__all__ = ["add_parser", "evaluate_run", "gflops_per_clip", "run"]
