"""Does a reduced model learn as well as the dense one? Dense vs TempMe (retrieval) and dense vs RLT
(classification), trained from scratch on the built-in synthetic videos, on a CPU, in minutes.

The data (`vidslim.data.synth`): 2,000 videos of a coloured digit moving over a static textured background,
64 px, 4 s at 8 fps (32 frames); every fifth video is held out for testing (400). Captions say "a red 3 moves
left, then up" (6 colours x 10 digits x 8 motions); the classes are the 8 motions (chance 12.5 %).

- Retrieval: a CLIP-style dual encoder (vision: 64 px frames, 16 px patches, width 128, 4 layers; text: width
  128, 2 layers over a word vocabulary of the captions), 8 frames per video, trained with the symmetric
  contrastive loss for 15 epochs, dense and with TempMe (ImgMe r=2 in layer 0, ClipMe joins 2 clips in layers
  1, 2, 3 with R_C 70 %, R_I 90 %, temporal position embeddings). Metric: text-to-video R@1 on the 400 test
  videos (chance 0.25 %).
- Classification: a VideoMAE-layout video ViT (64 px, 16 frames, 2x16x16 tubelets, width 128, 4 layers)
  trained with label smoothing 0.1 for 30 epochs, dense and with RLT (tau 0.1). Metric: top-1 on the test
  videos. On this data RLT also learns faster: the dense model spends its first epochs on the static
  backgrounds (which tell the classes nothing) before it finds the moving digit that RLT leaves it alone with.

Both: AdamW, lr 1e-3, weight decay 0.05, 10 % warm-up then cosine, batch 32, gradient clipping at 1, fp32, seed 0.

Every run goes through the same path as `vidslim train` (a YAML config per run, written to OUT/configs/, so
`vidslim train classify OUT/configs/classify_rlt.yaml` reruns one), with decoded clips cached in memory so
that the epochs measure the model, not the decoder. The speedup is the training step (forward, backward, AdamW)
of the two trained models on the same batch, interleaved round by round (`vidslim.bench.compare`): the median of
the per-round ratios with their interquartile range, "~1.4x?" with the timer's verdict when the rounds scatter too
much. Each run's median epoch time is listed with the run, not divided into a speedup: the runs took turns on a
possibly shared machine, so their ratio would mix the models with the machine's load.

    .venv/bin/python benchmarks/learn.py                  # about 11 minutes on 2 idle CPU cores
    .venv/bin/python benchmarks/learn.py --quick          # a smoke test (no learning to speak of)
    .venv/bin/python benchmarks/learn.py --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from vidslim.bench import compare, count_flops
from vidslim.bench.spread import unreliable_note
from vidslim.train import run_training
from vidslim.train.batch import move_batch
from vidslim.train.distributed import DistInfo
from vidslim.train.recipe.setup import Run, prepare_run

CLIP_CONFIG = dict(embed_dim=128, image_size=64, patch_size=16, vision_width=128, vision_layers=4, vision_heads=4,
                   vision_mlp_dim=512, text_width=128, text_heads=4, text_layers=2, text_mlp_dim=512,
                   num_frames=8)
VIT_CONFIG = dict(embed_dim=128, depth=4, num_heads=4, mlp_dim=512, image_size=64, patch_size=16, num_frames=16)
TEMPME = {"tempme": {"r": 2, "merge_layers": [1, 2, 3], "groups": [2, 2, 2], "rc": 0.3, "ri": 0.1}}
RLT = {"rlt": {"tau": 0.1}}

#: name -> (task kind, reduction, the metric compared)
EXPERIMENTS = {
    "retrieval_dense": ("retrieval", [], "t2v/R@1"),
    "retrieval_tempme": ("retrieval", [TEMPME], "t2v/R@1"),
    "classify_dense": ("classify", [], "top1"),
    "classify_rlt": ("classify", [RLT], "top1"),
}
PAIRS = (("retrieval", "retrieval_dense", "retrieval_tempme", 2.0), ("classify", "classify_dense", "classify_rlt",
                                                                       1.0))


def run_config(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The YAML run config of one experiment (the same schema `vidslim train` reads)."""
    kind, reduction, _ = EXPERIMENTS[name]
    retrieval = kind == "retrieval"
    epochs = args.epochs_retrieval if retrieval else args.epochs_classify
    steps_per_epoch = (args.videos * 4 // 5) // args.batch
    return {
        "run_dir": str(out / "runs" / name), "seed": args.seed, "epochs": epochs, "batch_size": args.batch,
        "lr": args.lr, "min_lr": args.lr / 100, "warmup_ratio": 0.1, "weight_decay": 0.05, "grad_clip": 1.0,
        "precision": "fp32", "log_every": steps_per_epoch, "checkpoint_every": 0, "eval_every": 0,
        "resume": False, "progress": not args.json,
        "model": {"name": "clip-b16" if retrieval else "videomae-s16", "reduction": reduction,
                  "config": CLIP_CONFIG if retrieval else {**VIT_CONFIG}},
        "data": {"name": "synthetic", "video_root": str(out / "synth"), "frames": 8 if retrieval else 16,
                 "size": 64, "cache": True, "synthetic": {"num_videos": args.videos, "fps": 8, "seconds": args.seconds,
                                                          "size": 64, "seed": args.seed}},
        "task": {} if retrieval else {"label_smoothing": 0.1},
    }


def train_one(name: str, args: argparse.Namespace, out: Path, info: DistInfo) -> tuple[Run, dict[str, Any]]:
    """Train one experiment from its YAML config; its final test metrics, epoch times and token counts."""
    kind, _, metric = EXPERIMENTS[name]
    path = out / "configs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    config = run_config(name, args, out)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.rmtree(config["run_dir"], ignore_errors=True)  # a fresh run, with nothing of an earlier one in its logs
    setup = prepare_run(kind, path, [], info)
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # the run's progress lines; stdout is the report alone
        result = run_training(setup.config, setup.model, setup.task, setup.stage_data, on_stage=setup.on_stage,
                              dist_info=info)
    wall = time.perf_counter() - started
    rows = [json.loads(line) for line in (setup.run_dir / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if r["kind"] == "train"]
    epoch_s = [setup.config.batch_size * setup.config.log_every / r["samples_per_s"] for r in epochs]
    return setup, {
        "name": name, "kind": kind, "metric": metric, "value": result.eval_metrics[metric],
        "metrics": result.eval_metrics, "epochs": len(epochs), "epoch_s_median": statistics.median(epoch_s),
        "train_wall_s": wall, "final_loss": epochs[-1]["loss"], "trainable_params": result.trainable_params,
    }


def pair_cost(kind: str, dense: Run, reduced: Run, rounds: int) -> dict[str, float]:
    """Training step (forward, backward, AdamW) of both trained models on the same batch, interleaved, and the
    FLOPs of their video encoders per clip on that batch."""
    c = dense.config
    dataset = dense.stage_data.split("train", c.stages[0])
    batch = dense.stage_data.collate()([dataset[i] for i in range(c.batch_size)])
    batch = move_batch(batch, torch.device("cpu"), c.video_normalize, c.video_layout)

    def step(setup: Run) -> Any:
        optimizer = torch.optim.AdamW([p for p in setup.model.parameters() if p.requires_grad], lr=1e-9)
        setup.model.train()

        def run() -> None:
            optimizer.zero_grad(set_to_none=True)
            loss, _ = setup.task.loss(setup.model, batch)
            loss.backward()
            optimizer.step()

        return run

    def gflops(setup: Run) -> float:
        encoder = setup.model.encode_video if kind == "retrieval" else setup.model
        return count_flops(encoder, batch["video"]).gflops / c.batch_size

    timing = compare({"dense": step(dense), "reduced": step(reduced)}, warmup=2, repeat=rounds, memory=False)
    paired = timing.paired("reduced")
    return {"dense_step_ms": timing.timings["dense"].median * 1e3,
            "reduced_step_ms": timing.timings["reduced"].median * 1e3,
            "step_speedup": paired.speedup, "step_paired": paired.to_dict(), "step_cell": paired.cell(),
            "dense_gflops": gflops(dense), "reduced_gflops": gflops(reduced)}


def chance(kind: str, result: dict[str, Any]) -> float:
    """The metric a random model gets: 1 / test videos for R@1, 1 / 8 classes for top-1 (percent)."""
    return 100.0 / (result["metrics"]["num_videos"] if kind == "retrieval" else 8)


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="vidslim-learn-"))
    info = DistInfo()
    results, setups = {}, {}
    for name in args.only or list(EXPERIMENTS):
        setups[name], results[name] = train_one(name, args, out, info)
    pairs = []
    for kind, dense_name, reduced_name, tolerance in PAIRS:
        if dense_name not in results or reduced_name not in results:
            continue
        dense, reduced = results[dense_name], results[reduced_name]
        speed = pair_cost(kind, setups[dense_name], setups[reduced_name], args.rounds)
        pairs.append({
            "kind": kind, "metric": dense["metric"], "dense": dense["value"], "reduced": reduced["value"],
            "reduced_name": reduced_name, "difference": reduced["value"] - dense["value"], "tolerance": tolerance,
            "chance": chance(kind, dense), **speed,
        })
    return {"machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                        "torch": torch.__version__}, "out": str(out), "videos": args.videos,
            "runs": list(results.values()), "pairs": pairs}


def to_markdown(result: dict[str, Any]) -> str:
    lines = [f"Synthetic data: {result['videos']} videos (64 px, 4 s at 8 fps; 16 frames per clip for classification, "
             f"8 for retrieval), 4/5 train, 1/5 test; "
             f"{result['machine']['threads']} threads, torch {result['machine']['torch']}.", "",
             "| task | metric | dense | reduced | difference (target) | chance | GFLOPs/clip dense / reduced | "
             "step speedup [IQR] (interleaved) | step ms dense / reduced |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in result["pairs"]:
        lines.append(
            f"| {p['kind']} | {p['metric']} | {p['dense']:.2f} | {p['reduced']:.2f} ({p['reduced_name']}) "
            f"| {p['difference']:+.2f} (within ±{p['tolerance']:g}) | {p['chance']:.2f} | "
            f"{p['dense_gflops']:.3f} / {p['reduced_gflops']:.3f} | {p['step_cell']} | "
            f"{p['dense_step_ms']:.0f} / {p['reduced_step_ms']:.0f} |")
    steps = [p["step_paired"] for p in result["pairs"]]
    note = unreliable_note([s["verdict"] for s in steps if not s["reliable"]], len(steps), "--rounds")
    if note:
        lines.append(f"\n{note}.")
    lines += ["", "Each run on its own (the runs took turns on the machine: compare their times only loosely):", "",
              "| run | epochs | final train loss | test metrics | median epoch s | train wall s |",
              "|---|---|---|---|---|---|"]
    for r in result["runs"]:
        shown = {k: round(v, 1) for k, v in r["metrics"].items() if k in ("t2v/R@1", "t2v/R@5", "v2t/R@1", "top1")}
        lines.append(f"| {r['name']} | {r['epochs']} | {r['final_loss']:.3f} | {shown} | {r['epoch_s_median']:.2f} | "
                     f"{r['train_wall_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=2000, help="synthetic videos (default 2000: 1600 train, 400 "
                        "test)")
    parser.add_argument("--seconds", type=float, default=4, help="video length at 8 fps (default 4: 32 frames)")
    parser.add_argument("--epochs-retrieval", type=float, default=15)
    parser.add_argument("--epochs-classify", type=float, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds of the step timing")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's; 1 on a busy "
                        "machine, where threads that wait for each other slow everything down)")
    parser.add_argument("--only", nargs="*", choices=list(EXPERIMENTS), help="run only these experiments")
    parser.add_argument("--out", default=None, help="folder for data, configs and runs (default: a temporary one)")
    parser.add_argument("--quick", action="store_true", help="40 videos, 1 epoch: a smoke test")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown tables")
    args = parser.parse_args()
    if args.quick:
        args.videos, args.epochs_retrieval, args.epochs_classify, args.batch, args.rounds = 40, 1, 1, 8, 3
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run(args)
    print(json.dumps(result, indent=1) if args.json else to_markdown(result))


if __name__ == "__main__":
    main()
