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
content-adaptive reducer such as RLT depends on the clips. `--json` prints one JSON object. The recipe is
`vidslim.train.recipe.evaluate`; this file parses and prints.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import torch

from vidslim.train.recipe.setup import prepare_run, read_tree, resolve_checkpoint


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
    parser.add_argument("--card", default=None, metavar="FILE", help="a reduction card (`vidslim tune --out`) "
                        "replacing the saved reducers (the same as the override model.reduction=CARD)")
    parser.add_argument("--batch-size", type=int, default=None, help="clips per batch (default: eval_batch_size)")
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP count")
    parser.add_argument("--out", metavar="FILE", default=None, help="also write the JSON result to FILE")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


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
    from vidslim.bench.flops import flops_of
    from vidslim.train import init_distributed
    from vidslim.train.distributed import shutdown
    from vidslim.train.recipe.evaluate import evaluate_run, load_training_checkpoint

    if args.batch_size is not None and args.batch_size < 1:
        from vidslim.errors import ConfigError

        raise ConfigError(f"--batch-size must be at least 1 clip, got {args.batch_size}")
    if args.out:
        from vidslim.io.paths import output_file

        output_file(args.out, "--out")
    overrides = list(args.overrides)
    if args.split is not None:
        overrides.append(f"data.eval_split={args.split}")
    if args.card is not None:
        from vidslim.bench.card_file import read_card

        overrides.append(f"model.reduction={json.dumps(read_card(args.card)[0])}")  # JSON is YAML: parsed back
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    tree = read_tree(args.config, overrides)
    info = init_distributed(None if tree.get("device") is None else str(tree["device"]))
    try:
        what, path = resolve_checkpoint(args.checkpoint, Path(str(tree.get("run_dir", "runs/default"))))
        setup = prepare_run(args.kind, args.config, overrides, info, checkpoint=path if what == "model" else None)
        if what == "train":
            load_training_checkpoint(setup, path)  # type: ignore[arg-type]
        elif what == "none" and info.is_main:
            print(f"no model in {tree.get('run_dir')}: evaluating the model as the config builds it",
                  file=sys.stderr)
        meter = None if args.no_flops else flops_of
        with torch.no_grad():
            result = {"checkpoint": str(path) if path is not None else None,
                      **evaluate_run(setup, args.batch_size, meter)}
        if info.is_main:
            text = json.dumps(result, indent=1)
            if args.out:
                Path(args.out).write_text(text + "\n")
            print(text if args.json else _table(result))
    finally:
        shutdown(info)
    return 0


__all__ = ["add_parser", "run"]
