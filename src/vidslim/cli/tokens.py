"""`vidslim tokens VIDEO --method {dense,rlt,random}`: how many tokens a method keeps, window by window.

    vidslim tokens a.mp4 --method rlt --tau 0.1                 # a table, one row per window, and a total
    vidslim tokens a.mp4 --method rlt --fps 12.5 --json         # the same as JSON
    vidslim tokens a.mp4 --method rlt --viz rlt.png             # the first window drawn (or .gif / .mp4: all)

Windows. The video is read once at `--fps` (its own frame rate by default; `read_video`'s rate rule: the frame
on screen at each tick), every frame resized as it is decoded (short side to `--size`, then a centred
`--size` x `--size` crop, what a model sees), and cut into consecutive, non-overlapping windows of `--frames`
frames from the first frame on. Each window is one clip of T'·H'·W' tubelets (T' = frames/tubelet,
H' = W' = size/patch); the method decides which become tokens:

- dense keeps every tubelet;
- rlt keeps the tubelets RLT's rule does not find static (`keep_mask_uint8`, tau `--tau`; spec rlt §1);
- random keeps round(keep · T'H'W') tubelets per window, drawn with `--seed` (spec rlt §4.1).

The last window. A video rarely holds a whole number of windows. By default (`--last drop`) the frames after
the last full window are left out and counted in `frames_left_out`, so every window is a full clip of
the same token count, as in the paper's token counts; a video shorter than one window is then an error.
`--last pad` fills the last window by repeating its last frame instead (`frames_padded`); those repeated
frames are static, so RLT drops their tubelets and padding lowers the kept fraction a little.

Memory. Long videos are read in chunks of about `CHUNK_WINDOWS` windows (one `read_video` call each, which
scans and decodes only its own stretch; see `read_windows`), so memory holds one chunk of resized frames
(16 x 224² x 3 bytes = 2.4 MB per window), not the whole video. `--viz` with .gif or .mp4 keeps every drawn
frame until it writes them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vidslim.bench.token_count import LASTS, METHODS, TokenConfig, TokenCount, Windows, count_tokens
from vidslim.errors import ConfigError


def add_parser(subparsers: Any) -> None:
    """Register `tokens` on the `vidslim` command."""
    parser = subparsers.add_parser(
        "tokens",
        help="how many tokens dense, RLT or random masking keep for a video; --viz draws it",
        description="Cut VIDEO into consecutive windows of --frames frames at --fps, resized to --size, and "
        "count for each window the tubelet tokens before (T'·H'·W') and after the method.",
    )
    parser.add_argument("video", metavar="VIDEO", help="video file")
    parser.add_argument("--method", choices=METHODS, default="rlt", help="which tubelets become tokens "
                        "(default rlt)")
    parser.add_argument("--tau", type=float, default=None, help="RLT threshold: a tubelet whose mean normalised "
                        "difference is not above tau is dropped (default 0.1)")
    parser.add_argument("--keep", type=float, default=None, help="random: fraction of tubelets kept per window "
                        "(default 0.5)")
    parser.add_argument("--frames", type=int, default=16, help="frames per window (default 16)")
    parser.add_argument("--fps", type=float, default=None, help="sampling rate in frames per second "
                        "(default: the video's own)")
    parser.add_argument("--size", type=int, default=224, help="frame side after resize and centre crop, a "
                        "multiple of --patch (default 224)")
    parser.add_argument("--tubelet", type=int, default=2, help="frames per tubelet (default 2)")
    parser.add_argument("--patch", type=int, default=16, help="patch side in pixels (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="random: seed of the masks (default 0)")
    parser.add_argument("--last", choices=LASTS, default="drop", help="a trailing partial window: drop its "
                        "frames (default) or pad it by repeating the last frame")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--viz", metavar="OUT", default=None, help="draw the kept and dropped tubelets: .png "
                        "(one window as a contact sheet), .gif or .mp4 (the whole video)")
    parser.add_argument("--viz-window", type=int, default=0, metavar="K", help="which window a .png shows "
                        "(default 0, the first)")
    parser.set_defaults(func=run)


def describe(config: TokenConfig) -> str:
    """'rlt (tau 0.1)' style name of the method and its parameter."""
    if config.method == "rlt":
        return f"rlt (tau {config.setting('tau'):g})"
    if config.method == "random":
        return f"random (keep {config.setting('keep'):g}, seed {config.seed})"
    return "dense"


def format_table(count: TokenCount) -> str:
    """The readable output: a header line, one row per window, a total line, and what happened to the tail."""
    c = count.config
    lines = [f"{count.video}: {describe(c)}, windows of {c.frames} frames at {count.fps:g} fps, "
             f"{c.size}x{c.size} px, tubelets of {c.tubelet}x{c.patch}x{c.patch}",
             f"{'window':>6}  {'start (s)':>9}  {'tokens':>7}  {'kept':>7}  {'kept %':>7}"]
    total = count.tokens_per_window
    for i, (start, kept) in enumerate(zip(count.start_s, count.tokens_kept, strict=True)):
        lines.append(f"{i:>6}  {start:>9.3f}  {total:>7}  {kept:>7}  {kept / total:>7.1%}")
    n = len(count.tokens_kept)
    windows = f"{n} window{'s' if n != 1 else ''}"
    lines.append(f"{'total':>6}  {windows:>9}  {count.tokens_total:>7}  {sum(count.tokens_kept):>7}  "
                 f"{count.kept_fraction:>7.1%}")
    if count.frames_left_out:
        lines.append(f"{count.frames_left_out} frames after the last full window are not counted "
                     f"(--last pad counts them)")
    if count.frames_padded:
        lines.append(f"the last window repeats its last frame {count.frames_padded} times (--last pad)")
    return "\n".join(lines)


class Drawing:
    """Collects what `--viz OUT` draws while the windows stream by, then writes OUT.

    .png: window `window` as a contact sheet with a title; .gif / .mp4: every window, at the sampling rate.
    RLT tubelets carry their run lengths; random and dense masks have no runs, so no numbers.
    """

    def __init__(self, out: str | Path, config: TokenConfig, window: int = 0) -> None:
        from vidslim.viz.save import FORMATS

        self.out = Path(out)
        self.config = config
        self.window = window
        self.still = self.out.suffix.lower() == ".png"
        self.parts: list[Tensor] = []
        if self.out.suffix.lower() not in FORMATS:
            raise ConfigError(f"--viz {out}: name the picture *.png, *.gif or *.mp4")
        if window < 0:
            raise ConfigError(f"--viz-window must be >= 0, got {window}")

    def __call__(self, windows: Windows, masks: Tensor, first: int) -> None:
        from vidslim.tokenize.run_length import run_length_map
        from vidslim.viz.rlt import draw_token_mask

        frames = windows.frames
        if self.still:
            if not first <= self.window < first + len(masks):
                return
            frames, masks = frames[self.window - first][None], masks[self.window - first][None]
        lengths = run_length_map(masks).flatten(0, 1) if self.config.method == "rlt" else None
        c = self.config
        self.parts.append(draw_token_mask(frames.flatten(0, 1), masks.flatten(0, 1), lengths, c.tubelet, c.patch))

    def write(self, count: TokenCount) -> Path:
        """Write the picture; raises `ConfigError` when the .png's window does not exist."""
        from vidslim.viz.save import save_frames

        if not self.parts:
            raise ConfigError(f"--viz-window {self.window}: the video has only {len(count.tokens_kept)} windows "
                              f"(0 to {len(count.tokens_kept) - 1})")
        frames = torch.cat(self.parts)
        title = None
        if self.still:
            k, total = self.window, count.tokens_per_window
            kept = count.tokens_kept[k]
            legend = "grey: dropped, outlined: kept"
            if self.config.method == "rlt":
                legend = "grey: dropped (repeats the tubelet before it), outlined: kept, number: run length in tubelets"
            title = (f"{Path(count.video).name} | {describe(self.config)} | window {k} at {count.start_s[k]:.2f} s, "
                     f"{self.config.frames} frames at {count.fps:g} fps | kept {kept} of {total} tubelets "
                     f"({kept / total:.1%}) | {legend}")
        return save_frames(frames, self.out, fps=count.fps, title=title)


def check_options(args: argparse.Namespace) -> None:
    """Refuse, before reading anything, a rate, window or size no video could be counted at (`vidslim.io.limits`),
    and a --viz picture that could not be written."""
    from vidslim.io.limits import check_fps, check_frames, check_size
    from vidslim.io.paths import output_file

    if args.fps is not None:
        check_fps(args.fps, "--fps")
    check_frames(args.frames, "--frames")
    check_size(args.size, "--size")
    if args.viz_window < 0:
        raise ConfigError(f"--viz-window must be >= 0 (0 is the first window), got {args.viz_window}")
    if args.viz:
        output_file(args.viz, "--viz")


def run(args: argparse.Namespace) -> int:
    """Count (and draw) the tokens of one video; print a table or JSON."""
    check_options(args)
    config = TokenConfig(method=args.method, tau=args.tau, keep=args.keep, frames=args.frames, fps=args.fps,
                         size=args.size, tubelet=args.tubelet, patch=args.patch, seed=args.seed, last=args.last)
    config.check()
    drawing = Drawing(args.viz, config, args.viz_window) if args.viz else None
    progress = not args.json and sys.stderr.isatty()
    count = count_tokens(args.video, config, progress=progress, on_windows=drawing)
    written = drawing.write(count) if drawing is not None else None
    if args.json:
        document = count.to_dict()
        if written is not None:
            document["viz"] = str(written)
        print(json.dumps(document, indent=2))
    else:
        print(format_table(count))
        if written is not None:
            print(f"picture: {written}")
    return 0
