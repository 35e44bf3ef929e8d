"""Counting the tokens a before-the-model method keeps, window by window, over a whole video.

The video is read at a target frame rate, resized as it is decoded and cut into consecutive windows of
`frames` frames; each window is one clip of T'·H'·W' tubelets, and the method (dense, or any before-the-model
reducer of the registry: rlt, random) decides which become tokens, built by the registry with only the settings
given (the rest are its constructor's defaults). `vidslim tokens`, the demo and benchmarks/rlt_tokens.py share
this code; see `vidslim.cli.tokens` for the rules on the last partial window and on memory.
"""


from __future__ import annotations

import inspect
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


def _selector_methods() -> tuple[str, ...]:
    """dense, and the short names of the registry's before-the-model reducers."""
    from vidslim.reduce.registry import REDUCERS

    return ("dense", *sorted(e.method_name for e in REDUCERS.values() if e.where == "input"))


METHODS = _selector_methods()
LASTS = ("drop", "pad")
#: windows read per `read_video` call: bounds the memory of a long video
CHUNK_WINDOWS = 64
#: windows whose masks are computed together: bounds the mask's float64 intermediates (~8 MB per window)
MASK_BATCH = 8


@dataclass(frozen=True)
class TokenConfig:
    """What to count: the method and its parameters, the windows, and the tubelet grid."""

    method: str = "rlt"
    tau: float | None = None
    keep: float | None = None
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
        if self.tau is not None and not math.isfinite(self.tau):
            raise ConfigError(f"--tau must be a finite number, got {self.tau}")
        if self.keep is not None and not 0 < self.keep <= 1:
            raise ConfigError(f"--keep must be a fraction in (0, 1], got {self.keep}")

    def selector(self) -> Any:
        """The method's reducer from the registry (None for dense), with only the settings given."""
        if self.method == "dense":
            return None
        from vidslim.reduce.registry import build_reduction, lookup

        given = {k: v for k, v in (("tau", self.tau), ("keep", self.keep)) if v is not None}
        params = lookup(self.method).parameters()
        (selector,) = build_reduction(self.method, fallback={"seed": self.seed},
                                      **{k: v for k, v in given.items() if k in params})
        return selector

    def setting(self, name: str) -> Any:
        """The value of the method's setting `name` in use: as given, else its constructor default (None when the
        method has no such setting)."""
        given = getattr(self, name, None)
        if self.method == "dense":
            return None
        from vidslim.reduce.registry import lookup

        default = lookup(self.method).parameters().get(name)
        if default is None or default is inspect.Parameter.empty:
            return None
        return given if given is not None else default

    def spec(self) -> Any:
        """The input the windows are counted as: `frames` frames of `size` px cut into tubelets and patches."""
        from vidslim.io.input_spec import InputSpec
        from vidslim.io.transforms import IMAGENET_MEAN, IMAGENET_STD

        return InputSpec("CTHW", IMAGENET_MEAN, IMAGENET_STD, self.frames, self.size, self.patch, self.tubelet)

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
            "tau": c.setting("tau"),
            "keep": c.setting("keep"),
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


def window_masks(frames: Tensor, config: TokenConfig, selector: Any = None) -> Tensor:
    """Keep masks bool [B, T', H', W'] of windows uint8 [B, T, H, W, 3] under `config.method` (`selector`: the
    method's reducer, built once per video so a random one draws a fresh mask for every window)."""
    if config.method == "dense":
        return torch.ones(frames.shape[0], *config.grid, dtype=torch.bool)
    selector = selector if selector is not None else config.selector()
    spec = config.spec()
    return torch.cat([selector.select_frames(part, spec) for part in frames.split(MASK_BATCH)])


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
    selector = config.selector()
    estimate = int(info.duration_s * fps // config.frames) if info.duration_s else None
    with tqdm(total=estimate, unit="window", desc=Path(path).name, file=sys.stderr, disable=not progress,
              leave=False) as bar:
        for windows in read_windows(path, config, fps, info.fps):
            masks = window_masks(windows.frames, config, selector)
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
