"""The steps of `vidslim demo` after the per-video RLT table: token schedules, the speed table, the pictures.

Everything runs on random weights (nothing is downloaded): token counts of TempMe, ToMe and TokenPrune depend
only on the configuration, RLT's only on the video, so FLOPs and times are those of the real models; which
tokens the merging and pruning pictures pick does depend on the weights (`--clip` loads real ones).

Two settings: the full one is the paper models (CLIP ViT-B/16 at 12 frames, the VideoMAE ViT-B/16 at 16 frames,
224 px); `--quick` keeps their 12-layer layout, patch 16 and every method's schedule but shrinks the width and
the video ViT's frames (112 px, 8 frames for the video ViT, width 64), so it exercises the same code in seconds.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

#: (model family, methods timed against dense on it)
VIDEO_VIT_METHODS = ("rlt", "tokenprune", "svitt", "rlt+tokenprune", "rlt+svitt", "tokenprune+svitt")
CLIP_METHODS = ("tome", "tempme", "rlt", "rlt+tempme", "tempme+svitt")


@dataclasses.dataclass(frozen=True)
class Setting:
    """The models and inputs of one demo setting."""

    name: str
    clip_model: str
    clip_frames: int
    video_vit_model: str
    video_vit_frames: int
    size: int
    clip_overrides: dict[str, Any]
    video_vit_overrides: dict[str, Any]
    repeat: int


FULL = Setting("full", "clip-b16", 12, "videomae-b16", 16, 224, {}, {}, repeat=3)
QUICK = Setting(
    "quick",
    "clip-b16",
    12,  # TempMe's B/16 schedule joins clips of 2, 2 and 3 frames: 12 frames
    "videomae-b16",
    8,
    112,
    {"image_size": 112, "vision_width": 64, "vision_heads": 2, "vision_mlp_dim": 128, "text_layers": 1,
     "text_width": 32, "text_heads": 2, "text_mlp_dim": 64, "embed_dim": 32},
    {"image_size": 112, "embed_dim": 64, "num_heads": 2, "mlp_dim": 128, "num_classes": 10},
    repeat=3,  # the fewest rounds whose spread the timer can judge (`vidslim.bench.spread.MIN_ROUNDS`)
)


def say(message: str, quiet: bool) -> None:
    """A progress line on stderr (the tables go to stdout)."""
    if not quiet:
        print(f"[demo] {message}", file=sys.stderr, flush=True)


@dataclasses.dataclass
class Schedule:
    """Tokens per video entering each layer's attention, and each layer's attention density, for one method."""

    model: str
    method: str
    tokens: list[float]
    density: list[float]
    gflops: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def schedule(model: str, method: str, frames: int, overrides: dict[str, Any], video: Tensor) -> Schedule:
    """Run the model once under `method` on `video` and read its per-layer token counts (`layer_report`)."""
    from vidslim.bench.report import layer_report
    from vidslim.bench.suite import build_method
    from vidslim.models.registry import create_model

    torch.manual_seed(0)
    net = create_model(model, reduction=build_method(method, model), **{"num_frames": frames, **overrides}).eval()
    forward = net.encode_video
    report = layer_report(forward, video[None], root=net)
    return Schedule(
        model, method, [r.tokens_attn for r in report.rows], [r.density for r in report.rows], report.gflops_per_video
    )


def format_schedules(schedules: Sequence[Schedule]) -> str:
    """One line per method: tokens per video into each layer (and the density where attention is sparse)."""
    layers = max(len(s.tokens) for s in schedules)
    head = f"{'model':<14} {'method':<18} " + " ".join(f"{f'L{i}':>6}" for i in range(layers)) + f" {'GFLOPs':>8}"
    lines = [head, "-" * len(head)]
    for s in schedules:
        cells = " ".join(f"{t:>6.0f}" for t in s.tokens)
        lines.append(f"{s.model:<14} {s.method:<18} {cells} {s.gflops:>8.3g}")
        if any(d < 1.0 for d in s.density):
            dens = " ".join(f"{d:>6.2f}" for d in s.density)
            lines.append(f"{'':<14} {'  attention density':<18} {dens}")
    return "\n".join(lines)


def speed_rows(
    setting: Setting, clips: dict[str, Tensor], quiet: bool, repeat: int | None = None
) -> list[tuple[str, Any]]:
    """Every method against dense, timed side by side, on both models: [(model, BenchRow)]."""
    from vidslim.bench.suite import Suite
    from vidslim.models.registry import family_of

    rows: list[tuple[str, Any]] = []
    for model, methods, frames, overrides in (
        (setting.video_vit_model, VIDEO_VIT_METHODS, setting.video_vit_frames, setting.video_vit_overrides),
        (setting.clip_model, CLIP_METHODS, setting.clip_frames, setting.clip_overrides),
    ):
        family = family_of(model)
        assert family is not None
        say(f"timing dense and {len(methods)} methods on {model} ({frames} frames, {setting.size} px)", quiet)
        start = time.perf_counter()
        from vidslim.cli.bench import StepBars

        steps = StepBars(disable=quiet)  # building, counting and profiling: minutes on the full models
        suite = Suite(model, ["dense", *methods], clips[family], frames=frames, overrides=overrides, steps=steps)
        rounds = repeat or setting.repeat
        from tqdm import tqdm

        with tqdm(total=1 + rounds, desc=f"timing {model}", unit="round", file=sys.stderr, leave=False,
                  disable=quiet or not sys.stderr.isatty()) as bar:
            for row in suite.run(batch=1, repeat=rounds, progress=bar.update):
                rows.append((model, row))
        steps.close()
        say(f"  {model} done in {time.perf_counter() - start:.0f} s", quiet)
    return rows


def format_speed(rows: Sequence[tuple[str, Any]]) -> str:
    """The side-by-side table: model, method, kept tokens, GFLOPs, FLOP ratio, time, speedup, realised share."""
    head = (
        f"{'model':<14} {'method':<18} {'tokens':>7} {'GFLOPs':>8} {'FLOPs':>7} {'ms':>8} {'speedup [IQR]':>18} "
        f"{'realised [IQR]':>17} {'overhead':>8}"
    )
    lines = [head, "-" * len(head)]
    for model, r in rows:
        if r.error:
            lines.append(f"{model:<14} {r.method:<18} failed: {r.error}")
            continue
        lines.append(
            f"{model:<14} {r.method:<18} {_pct(r.token_fraction):>7} {_num(r.gflops, '.3g'):>8} "
            f"{_pct(r.flop_ratio):>7} {_num(r.time_ms, '.0f'):>8} {r.speedup_text():>18} "
            f"{r.realised_text():>17} "
            f"{_pct(None if r.overhead_pct is None else r.overhead_pct / 100):>8}"
        )
    shaky = [r for _, r in rows if r.speedup is not None and not r.reliable]
    if shaky:
        lines.append(f"~x?: the timer could not trust this figure ({shaky[0].verdict}); rerun when the machine is "
                     "quieter, or with --repeat 5")
    return "\n".join(lines)


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else f"{value:{spec}}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def picture_models(setting: Setting, clip_checkpoint: Path | None = None) -> tuple[Any, Any]:
    """CLIP with TempMe (the paper's B/16 settings) and the video ViT with TokenPrune (layers 3, 6, 9, keep 0.7),
    both in eval mode; CLIP from `clip_checkpoint` when given (a Hugging Face folder or an OpenAI CLIP file)."""
    from vidslim.bench.suite import build_method
    from vidslim.models.loading import load_model
    from vidslim.models.registry import create_model

    torch.manual_seed(0)
    clip_overrides = {"num_frames": setting.clip_frames, **setting.clip_overrides}
    tempme = build_method("tempme", setting.clip_model)
    if clip_checkpoint is not None:
        clip = load_model(clip_checkpoint, reduction=tempme)
    else:
        clip = create_model(setting.clip_model, reduction=tempme, **clip_overrides)
    vit_overrides = {"num_frames": setting.video_vit_frames, **setting.video_vit_overrides}
    vit = create_model(setting.video_vit_model, reduction=build_method("tokenprune", setting.video_vit_model),
                       **vit_overrides)
    return clip.eval(), vit.eval()


def pictures(name: str, clip_frames: Tensor, vit_frames: Tensor, out: Path, clip: Any, vit: Any) -> dict[str, str]:
    """TempMe's merge groups (through its ClipMe layers) and the tokens TokenPrune keeps after its last pruning
    layer, drawn over one video's frames: {"tempme": path, "tokenprune": path}."""
    from vidslim.viz.merge import draw_model_merges
    from vidslim.viz.prune import draw_model_pruning
    from vidslim.viz.save import save_frames

    merge = clip.reduction[0]
    layer = merge.merge_layers[0]  # the first ClipMe layer: groups now cross frames, and are still small
    merged = draw_model_merges(clip, clip_frames, after_layer=layer)
    tempme = save_frames(merged, out / f"tempme_{name}.png", title=(
        f"{name}: TempMe merge groups after layer {layer}, its first ClipMe layer (one colour per token that covers "
        f"several patches, in every frame it covers; unpainted: patches still on their own)"))
    pruned = draw_model_pruning(vit, vit_frames)
    layer = max(pruned)
    prune = vit.reduction[0]
    pruned_path = save_frames(pruned[layer], out / f"tokenprune_{name}.png", title=(
        f"{name}: SViTT node pruning, the tokens kept after layer {layer} (keep {prune.keep:g} at layers "
        f"{', '.join(map(str, prune.layers))}; grey: pruned)"))
    return {"tempme": str(tempme), "tokenprune": str(pruned_path)}


def speedup_plot(rows: Sequence[tuple[str, Any]], path: Path) -> str:
    """Measured speedup against the fraction of tokens kept, one point per method and model, with the spread of
    its rounds, in its method's colour (the same as in `vidslim tune --plot`); a point the timer flagged unreliable
    is drawn as a ring marked "?", and the note under the title gives the load and the timer's verdict."""
    from vidslim.viz.plot import plot_speedup

    drawn = [(model, r) for model, r in rows
             if r.method != "dense" and not r.error and r.token_fraction is not None and r.speedup is not None]
    points = [
        (f"{r.method} ({model.split('-')[0]})", r.token_fraction, r.speedup, min(r.speedup_q25, r.speedup),
         max(r.speedup_q75, r.speedup), bool(r.reliable), r.method)
        for model, r in drawn
    ]
    return str(plot_speedup(points, path, title="vidslim demo: measured speedup against tokens kept", size=(760, 500),
                            note=plot_note([r for _, r in drawn]), join=False))


def plot_note(rows: Sequence[Any]) -> str:
    """The line(s) under the demo plot's title: rounds, the machine's load, and the timer's verdict on the points it
    could not trust ("2 of 11 unreliable: load 5.8 on 2 cores, rounds spread 34% (> 20%)")."""
    loads = [r.load_after if r.load_after is not None else r.load_before for r in rows]
    loads = [x for x in loads if x is not None]
    cores = next((r.cores for r in rows if r.cores is not None), None)
    rounds = max((r.rounds for r in rows), default=0)
    parts = [f"batch 1, {rounds} interleaved rounds, {torch.get_num_threads()} thread(s)",
             f"load {max(loads):.1f} on {cores} cores" if loads and cores else "load unknown",
             "bars: IQR of paired rounds"]
    shaky = [r for r in rows if not r.reliable]
    if shaky:
        parts.append(f"{len(shaky)} of {len(rows)} {shaky[0].verdict} (ring, ?)")
    return "; ".join(parts)
