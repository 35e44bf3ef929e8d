"""vidslim's dense encoders against Hugging Face transformers on the same weights and the same input (CPU, fp32).

Rows:
- CLIP ViT-B/16 image tower on the 12 frames of one video (vidslim `CLIP.encode_frames` on [1, 12, 3, 224, 224]
  against transformers' `CLIPVisionModel`, attn_implementation="sdpa", on [12, 3, 224, 224]);
- the same for CLIP ViT-B/32;
- VideoMAE ViT-B/16 on one 16x224x224 clip (vidslim `VideoViT` against `VideoMAEForVideoClassification`,
  sdpa, 400 classes).

Weights are random: a transformers model is initialised, saved with save_pretrained to a temporary folder and
read back with `vs.load_model`, so both sides hold the same tensors (the table reports the largest output
difference as a check). vidslim's CLIP output includes the final projection, transformers' CLIPVisionModel
stops at the pooled CLS (one [12, 768] x [768, 512] product less). Protocol: torch.inference_mode, one warm-up
call each, then `--rounds` rounds running the two interleaved (order alternating); medians (and minima) of the
times and the median of the per-round ratios. On a shared machine the minima are the steadier figure.

    .venv/bin/python benchmarks/clip_speed.py                  # markdown table
    .venv/bin/python benchmarks/clip_speed.py --json           # one JSON document
    .venv/bin/python benchmarks/clip_speed.py --rows clip-b32 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from collections.abc import Callable
from typing import Any

import torch

import vidslim as vs
from vidslim.bench.timer import compare

ROWS = ("clip-b16", "clip-b32", "videomae-b16")


def clip_pair(patch: int, frames: int) -> tuple[Callable[[], torch.Tensor], Callable[[], torch.Tensor], float]:
    """(vidslim call, transformers call, max |difference| of the pooled CLS before projection)."""
    import transformers

    config = transformers.CLIPConfig(text_config=dict(num_hidden_layers=1), vision_config=dict(patch_size=patch))
    with tempfile.TemporaryDirectory() as folder:
        transformers.CLIPModel(config).save_pretrained(folder)
        ours = vs.load_model(folder)
        theirs = transformers.CLIPVisionModel.from_pretrained(folder, attn_implementation="sdpa").eval()
    video = torch.randn(1, frames, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    flat = video[0]
    with torch.inference_mode():
        cls = ours.visual.frame_cls(ours.visual.transformer(ours.visual.embed(video)), 1, frames)
        diff = (ours.visual.ln_post(cls[0]) - theirs(pixel_values=flat).pooler_output).abs().max().item()
    return (lambda: ours.encode_frames(video)), (lambda: theirs(pixel_values=flat).pooler_output), diff


def videomae_pair() -> tuple[Callable[[], torch.Tensor], Callable[[], torch.Tensor], float]:
    import transformers

    config = transformers.VideoMAEConfig(num_labels=400)
    with tempfile.TemporaryDirectory() as folder:
        transformers.VideoMAEForVideoClassification(config).save_pretrained(folder)
        ours = vs.load_model(folder)
        theirs = transformers.VideoMAEForVideoClassification.from_pretrained(folder, attn_implementation="sdpa").eval()
    clip = torch.randn(1, 16, 3, 224, 224, generator=torch.Generator().manual_seed(0))  # transformers' layout
    ours_in = clip.permute(0, 2, 1, 3, 4).contiguous()  # vidslim's [B, C, T, H, W]
    with torch.inference_mode():
        diff = (ours(ours_in) - theirs(pixel_values=clip).logits).abs().max().item()
    return (lambda: ours(ours_in)), (lambda: theirs(pixel_values=clip).logits), diff


def run_row(name: str, rounds: int, frames: int) -> dict[str, Any]:
    if name == "videomae-b16":
        ours, theirs, diff = videomae_pair()
        shape = "1 x 16 x 224 x 224 (1568 tokens)"
    else:
        patch = 16 if name == "clip-b16" else 32
        ours, theirs, diff = clip_pair(patch, frames)
        shape = f"{frames} frames x 224 x 224 ({frames} x {(224 // patch) ** 2 + 1} tokens)"
    with torch.inference_mode():  # the project's timer: alternating paired rounds after one warm-up round
        result = compare({"transformers": theirs, "vidslim": ours}, warmup=1, repeat=rounds, memory=False)
    paired = result.paired("vidslim")  # transformers time / vidslim time, per round
    t_ours, t_theirs = result.timings["vidslim"], result.timings["transformers"]
    return {
        "model": name,
        "input": shape,
        "vidslim_ms": 1000 * t_ours.median,
        "transformers_ms": 1000 * t_theirs.median,
        "vidslim_min_ms": 1000 * t_ours.min,
        "transformers_min_ms": 1000 * t_theirs.min,
        "speedup": paired.speedup,
        "speedup_text": paired.label(),
        "paired": paired.to_dict(),
        "max_abs_diff": diff,
        "rounds": rounds,
    }


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"CPU: {meta['processor'] or meta['machine']}, {meta['threads']} threads, torch {meta['torch']}, "
        f"transformers {meta['transformers']}, fp32, inference_mode, medians of {rows[0]['rounds']} interleaved rounds",
        "",
        "| model | input | vidslim median (min) ms | transformers sdpa median (min) ms | speed-up | max abs diff |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['input']} | {r['vidslim_ms']:.0f} ({r['vidslim_min_ms']:.0f}) | "
            f"{r['transformers_ms']:.0f} ({r['transformers_min_ms']:.0f}) | {r['speedup_text']} | "
            f"{r['max_abs_diff']:.1e} |"
        )
    lines += ["", "speed-up: median over rounds of transformers time / vidslim time (> 1: vidslim faster) "
              "[interquartile range]; '~x?' marks a figure whose rounds scatter too much to quote"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS), help="which comparisons to run")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved timed rounds per row (default 9)")
    parser.add_argument("--frames", type=int, default=12, help="frames per video for the CLIP rows (default 12)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers

    transformers.utils.logging.set_verbosity_error()  # no load reports or progress bars in the output
    transformers.utils.logging.disable_progress_bar()

    meta = {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    rows = [run_row(name, args.rounds, args.frames) for name in args.rows]
    print(json.dumps({"meta": meta, "rows": rows}, indent=2) if args.json else markdown(rows, meta))


if __name__ == "__main__":
    main()
