"""The video half of every dataset: find a record's file, decode and sample it with `vidslim.io`, make views.

`VideoConfig` says how frames are read (count, rate, size, training or evaluation sampling, how many views);
`load_views` turns one file into uint8 frames `[T, H, W, 3]`, or `[V, T, H, W, 3]` for several views.

- train=True: one random clip (TSN segment sampling without `fps`, a random start with it), a random crop
  and, with `hflip > 0`, a random horizontal flip. Flipping is off by default: it swaps left and right, which
  changes the class on Something-Something ("pushing from left to right") and on the synthetic motions.
- train=False: uniform (middle-of-segment) frames, centre crop. `num_clips` > 1 reads several clips in one
  decoding pass (`vidslim.io.read_clips`); `num_crops=3` takes the left/top, centre and right/bottom square
  along the long side after resizing the short side (the 3-crop test of SlowFast / VideoMAE / RLT). Views are
  ordered crop-major, then clip (view `c * num_clips + k`), as the RLT test step orders them.

Random choices draw from torch's global generator (which DataLoader seeds differently in every worker), or,
with `seed` set, from a generator seeded by (seed, epoch, index), so a run samples the same frames whatever
the number of workers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from vidslim.data.records import PathLike, Record
from vidslim.errors import ConfigError, VideoNotFoundError

# tried in this order when an annotation names a video without its extension
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v")


@dataclass(frozen=True)
class VideoConfig:
    """How a dataset reads each video.

    num_frames: frames per clip (None: every frame at `fps`, or every frame). fps: sampling rate (None: spread
    `num_frames` over the window). size: an int resizes the short side and crops a square, (H, W) resizes
    exactly, None keeps the stored size (then videos of different sizes cannot share a batch). train: random
    (training) or deterministic (evaluation) sampling. num_clips / num_crops: evaluation views. hflip:
    probability of a horizontal flip in training. threads: FFmpeg decoding threads (leave off with many
    DataLoader workers, each already a process). seed: per-item generators for reproducible sampling.
    """

    num_frames: int | None = 8
    fps: float | None = None
    size: int | tuple[int, int] | None = 224
    train: bool = False
    num_clips: int = 1
    num_crops: int = 1
    hflip: float = 0.0
    interpolation: str = "bilinear"
    threads: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.num_clips < 1 or self.num_crops not in (1, 3):
            raise ConfigError(f"VideoConfig: num_clips must be >= 1 and num_crops 1 or 3, got {self.num_clips} "
                              f"and {self.num_crops}")
        if self.train and self.num_views > 1:
            raise ConfigError("VideoConfig: several views (num_clips, num_crops) are for evaluation; "
                              "set train=False or use one view")
        if self.num_clips > 1 and self.num_frames is None:
            raise ConfigError("VideoConfig: num_clips > 1 needs num_frames")
        if self.num_crops == 3 and not isinstance(self.size, int):
            raise ConfigError(f"VideoConfig: num_crops=3 needs an int size (the crop side), got {self.size!r}")
        if not 0.0 <= self.hflip <= 1.0:
            raise ConfigError(f"VideoConfig: hflip is a probability in [0, 1], got {self.hflip}")

    @property
    def num_views(self) -> int:
        """Views per video: num_crops * num_clips."""
        return self.num_crops * self.num_clips

    def frame_shape(self) -> tuple[int, ...] | None:
        """The shape of one item's frames ([V,] T, H, W, 3), or None when it depends on the video."""
        if self.num_frames is None or self.size is None:
            return None
        h, w = (self.size, self.size) if isinstance(self.size, int) else self.size
        shape = (self.num_frames, int(h), int(w), 3)
        return (self.num_views, *shape) if self.num_views > 1 else shape

    def generator(self, epoch: int, index: int) -> torch.Generator | None:
        """A generator seeded by (seed, epoch, index) when `seed` is set, else None (torch's global one)."""
        if self.seed is None:
            return None
        mixed = ((self.seed * 1_000_003 + epoch) * 1_000_033 + index) % (1 << 63)
        return torch.Generator().manual_seed(mixed)


def resolve_video(root: PathLike | None, name: str, extensions: tuple[str, ...] = VIDEO_EXTENSIONS) -> Path:
    """The file an annotation's video name refers to.

    Tried in order: `root/name`; `root/name` plus each extension; the same for the name's last component
    directly under `root` (LSMDC / Kinetics folders flattened); and, for ActivityNet's `v_<id>` names,
    `<id>` without the prefix. Raises `VideoNotFoundError` listing what was tried.
    """
    base = Path(root) if root is not None else Path()
    stem = Path(name)
    names = [stem]
    if stem.parent != Path():
        names.append(Path(stem.name))
    if stem.name.startswith("v_"):
        names.append(stem.with_name(stem.name[2:]))
    tried: list[Path] = []
    for candidate in names:
        path = base / candidate
        tried.append(path)
        if path.suffix and path.is_file():
            return path
        for ext in extensions:
            with_ext = path.with_name(path.name + ext)
            if with_ext.is_file():
                return with_ext
    shown = ", ".join(os.fspath(p) for p in tried)
    raise VideoNotFoundError(os.fspath(base / name), f"no such video (tried {shown} with extensions "
                             f"{', '.join(extensions)})", "check the dataset's video root")


def load_views(path: PathLike, record: Record, config: VideoConfig,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 frames of `record`'s window in `path`: [T, H, W, 3], or [V, T, H, W, 3] with several views."""
    from vidslim.io.video import read_clips, read_video

    three = config.num_crops == 3
    size = config.size
    crop = None if three else ("random" if config.train else "center")
    common = dict(fps=config.fps, start=record.start, end=record.end, size=size, crop=crop, generator=generator,
                  interpolation=config.interpolation, threads=config.threads)
    if config.num_clips > 1:
        assert config.num_frames is not None
        frames = torch.stack([c.frames for c in read_clips(path, config.num_clips, config.num_frames, **common)])
    else:
        sampling = "random" if config.train else "uniform"
        frames = read_video(path, num_frames=config.num_frames, sampling=sampling, **common).frames
    if three:
        frames = three_crops(frames, int(size))  # type: ignore[arg-type]
        frames = frames.flatten(0, 1) if config.num_clips > 1 else frames
    if config.train and config.hflip > 0 and float(torch.rand((), generator=generator)) < config.hflip:
        frames = frames.flip(-2)
    return frames


def three_crops(frames: torch.Tensor, size: int) -> torch.Tensor:
    """[..., H, W, C] -> [3, ..., size, size, C]: squares at the start, centre and end of the long side.

    The short side must already be `size`; offsets are 0, (L - size) // 2 and L - size.
    """
    height, width = int(frames.shape[-3]), int(frames.shape[-2])
    if min(height, width) != size:
        raise ValueError(f"three_crops needs the short side resized to {size}, got {height} x {width}")
    long = max(height, width)
    offsets = (0, (long - size) // 2, long - size)
    if width >= height:
        return torch.stack([frames[..., :, o : o + size, :] for o in offsets])
    return torch.stack([frames[..., o : o + size, :, :] for o in offsets])
