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
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vidslim.errors import ConfigError, SamplingError

METHODS = ("dense", "rlt", "random")
LASTS = ("drop", "pad")
#: windows read per `read_video` call: bounds the memory of a long video
CHUNK_WINDOWS = 64
#: windows whose masks are computed together: bounds the mask's float64 intermediates (~8 MB per window)
MASK_BATCH = 8


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
    parser.add_argument("--tau", type=float, default=0.1, help="RLT threshold: a tubelet whose mean normalised "
                        "difference is not above tau is dropped (default 0.1)")
    parser.add_argument("--keep", type=float, default=0.5, help="random: fraction of tubelets kept per window "
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


@dataclass(frozen=True)
class TokenConfig:
    """What to count: the method and its parameters, the windows, and the tubelet grid."""

    method: str = "rlt"
    tau: float = 0.1
    keep: float = 0.5
    frames: int = 16
    fps: float | None = None
    size: int = 224
    tubelet: int = 2
    patch: int = 16
    seed: int = 0
    last: str = "drop"

    def check(self) -> None:
        """Raise `ConfigError` naming the option and the fix for anything that cannot be counted."""
        if self.method not in METHODS:
            raise ConfigError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.last not in LASTS:
            raise ConfigError(f"--last must be one of {', '.join(LASTS)}, got {self.last!r}")
        if self.tubelet < 1 or self.patch < 1:
            raise ConfigError(f"--tubelet and --patch must be >= 1, got {self.tubelet} and {self.patch}")
        if self.frames < 1 or self.frames % self.tubelet:
            raise ConfigError(f"--frames {self.frames} is not a positive multiple of --tubelet {self.tubelet}; "
                              f"use --frames {max(1, round(self.frames / self.tubelet)) * self.tubelet}")
        if self.size < self.patch or self.size % self.patch:
            raise ConfigError(f"--size {self.size} is not a positive multiple of --patch {self.patch}; use --size "
                              f"{max(1, round(self.size / self.patch)) * self.patch}")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ConfigError(f"--fps must be a positive number of frames per second, got {self.fps}")
        if not math.isfinite(self.tau):
            raise ConfigError(f"--tau must be a finite number, got {self.tau}")
        if not 0 < self.keep <= 1:
            raise ConfigError(f"--keep must be a fraction in (0, 1], got {self.keep}")

    @property
    def grid(self) -> tuple[int, int, int]:
        """(T', H', W') tubelets of one window."""
        side = self.size // self.patch
        return self.frames // self.tubelet, side, side


@dataclass(frozen=True)
class Windows:
    """Consecutive windows of one stretch of the video: frames uint8 [B, T, H, W, 3] (B may be 0), start_s [B].

    `padded`: frames at the end of the last window that repeat its last real frame (--last pad);
    `left_out`: frames after the last full window that no window holds (--last drop).
    """

    frames: Tensor
    start_s: Tensor
    padded: int = 0
    left_out: int = 0


@dataclass
class TokenCount:
    """Tokens before and after a method, per window of one video (see the module docstring)."""

    video: str
    config: TokenConfig
    fps: float
    start_s: list[float] = field(default_factory=list)
    tokens_kept: list[int] = field(default_factory=list)
    frames_left_out: int = 0
    frames_padded: int = 0

    @property
    def tokens_per_window(self) -> int:
        t, h, w = self.config.grid
        return t * h * w

    @property
    def tokens_total(self) -> int:
        return self.tokens_per_window * len(self.tokens_kept)

    @property
    def kept_fraction(self) -> float:
        return sum(self.tokens_kept) / self.tokens_total if self.tokens_total else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The `--json` document."""
        c = self.config
        return {
            "video": self.video,
            "method": c.method,
            "tau": c.tau if c.method == "rlt" else None,
            "keep": c.keep if c.method == "random" else None,
            "frames": c.frames,
            "fps": self.fps,
            "size": c.size,
            "tubelet": c.tubelet,
            "patch": c.patch,
            "seed": c.seed if c.method == "random" else None,
            "last": c.last,
            "frames_left_out": self.frames_left_out,
            "frames_padded": self.frames_padded,
            "clips": [{"start_s": s, "tokens_total": self.tokens_per_window, "tokens_kept": k}
                      for s, k in zip(self.start_s, self.tokens_kept, strict=True)],
            "tokens_total": self.tokens_total,
            "tokens_kept": sum(self.tokens_kept),
            "kept_fraction": self.kept_fraction,
        }


def chunk_windows(fps: float, native: float | None, frames: int) -> int:
    """Windows per read: the smallest count >= CHUNK_WINDOWS (and <= 4·CHUNK_WINDOWS) whose length in seconds is
    a whole number of the video's own frames, so every chunk starts on a frame's timestamp; else CHUNK_WINDOWS."""
    if not native:
        return CHUNK_WINDOWS
    ratio = Fraction(native).limit_denominator(1001) / Fraction(fps).limit_denominator(1001)
    step = ratio.denominator // math.gcd(ratio.denominator, frames)  # windows per aligned stretch
    aligned = math.ceil(CHUNK_WINDOWS / step) * step
    return aligned if aligned <= 4 * CHUNK_WINDOWS else CHUNK_WINDOWS


def read_windows(path: str | Path, config: TokenConfig, fps: float, native: float | None = None) -> Iterator[Windows]:
    """Consecutive windows of `config.frames` frames at `fps`, `config.size` px, read a chunk at a time.

    Chunk c is read as the stretch [c·K/fps, (c+1)·K/fps) seconds, K = `chunk_windows(...)`·frames. Where a chunk
    starts on a frame's timestamp (always at the video's own rate `native`, and at rates whose ratio to it has a
    small denominator) this gives exactly the frames of one read of the whole video. Elsewhere the first frame of
    a chunk may be the one just after its tick instead of the one on screen at it (one frame in K, late by less
    than a source frame).
    """
    from vidslim.io.video import read_video

    frames = config.frames
    chunk_frames = chunk_windows(fps, native, frames) * frames
    chunk = 0
    while True:
        start = chunk * chunk_frames / fps
        try:
            clip = read_video(path, fps=fps, start=start or None, end=start + chunk_frames / fps, size=config.size)
        except SamplingError:
            if chunk == 0:
                raise
            return  # the previous chunk ended exactly at the end of the video: the next starts past it
        whole, rest = divmod(len(clip), frames)
        full = clip.frames[: whole * frames].unflatten(0, (whole, frames))
        starts = clip.timestamps[: whole * frames : frames]
        if len(clip) == chunk_frames:
            yield Windows(full, starts)
            chunk += 1
            continue
        if rest and config.last == "pad":  # the last chunk: fill its partial window with its last frame
            tail = clip.frames[whole * frames :]
            filled = torch.cat([tail, tail[-1:].expand(frames - rest, *tail.shape[1:])])
            yield Windows(torch.cat([full, filled[None]]), torch.cat([starts, clip.timestamps[whole * frames :][:1]]),
                          padded=frames - rest)
        else:
            yield Windows(full, starts, left_out=rest)
        return


def window_masks(frames: Tensor, config: TokenConfig, generator: torch.Generator | None = None) -> Tensor:
    """Keep masks bool [B, T', H', W'] of windows uint8 [B, T, H, W, 3] under `config.method`."""
    from vidslim.tokenize.random_mask import random_keep_mask
    from vidslim.tokenize.rlt_mask import keep_mask_uint8

    if config.method == "rlt":
        return torch.cat([keep_mask_uint8(part, config.tau, config.tubelet, config.patch)
                          for part in frames.split(MASK_BATCH)])
    everything = torch.ones(frames.shape[0], *config.grid, dtype=torch.bool)
    if config.method == "dense":
        return everything
    return random_keep_mask(everything, config.keep, generator)


WindowHook = Callable[[Windows, Tensor, int], None]


def count_tokens(
    path: str | Path,
    config: TokenConfig,
    progress: bool = False,
    on_windows: WindowHook | None = None,
) -> TokenCount:
    """Count the tokens `config.method` keeps in every window of `path`; see the module docstring.

    on_windows(windows, masks, first) is called for every stretch of windows with their keep masks
    [B, T', H', W'] and the index of their first window (`--viz` draws with it). Raises `ConfigError` for bad
    options or a video shorter than one window (with --last drop), `VideoDecodeError` for a bad file.
    """
    from tqdm import tqdm

    from vidslim.io.probe import probe

    config.check()
    info = probe(path)
    fps = config.fps or info.fps
    if not fps:
        raise ConfigError(f"{path}: the frame rate is not recorded in the file; pass --fps")
    count = TokenCount(str(path), config, float(fps))
    generator = torch.Generator().manual_seed(config.seed)
    estimate = int(info.duration_s * fps // config.frames) if info.duration_s else None
    with tqdm(total=estimate, unit="window", desc=Path(path).name, file=sys.stderr, disable=not progress,
              leave=False) as bar:
        for windows in read_windows(path, config, fps, info.fps):
            masks = window_masks(windows.frames, config, generator)
            if on_windows is not None and len(masks):
                on_windows(windows, masks, len(count.tokens_kept))
            count.start_s += windows.start_s.tolist()
            count.tokens_kept += masks.flatten(1).sum(dim=1).tolist()
            count.frames_padded += windows.padded
            count.frames_left_out += windows.left_out
            bar.update(len(masks))
    if not count.tokens_kept:
        raise ConfigError(f"{path}: {count.frames_left_out} frames at {fps:g} fps do not fill one window of "
                          f"--frames {config.frames}; pass fewer --frames, a higher --fps, or --last pad")
    return count


def describe(config: TokenConfig) -> str:
    """'rlt (tau 0.1)' style name of the method and its parameter."""
    if config.method == "rlt":
        return f"rlt (tau {config.tau:g})"
    if config.method == "random":
        return f"random (keep {config.keep:g}, seed {config.seed})"
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


def run(args: argparse.Namespace) -> int:
    """Count (and draw) the tokens of one video; print a table or JSON."""
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
