"""A built-in synthetic video dataset: coloured digits moving over a static textured background.

    from vidslim.data.synth import make_synthetic
    annotations = make_synthetic("synth", num_videos=32, fps=8, seconds=4, size=64, seed=0)
    ds = vidslim.data.builders.labels(annotations, annotations.parent)        # 8 motion classes
    ds = vidslim.data.builders.captions(annotations, annotations.parent)      # "a red 3 moves left, then up"

Each video shows one digit (a 5x7 bitmap font, scaled up) in one colour. It moves in one direction for the
first half of the video and turns by 90 degrees for the second half: 8 motion classes (left then up, left
then down, ..., down then right), the class label. It moves about size/40 pixels per frame (at least 1) over
a background that never changes, so most of every frame is static: what RLT drops and what a real
talking-head or surveillance video looks like, while the object still needs several frames to describe.

Files written to `out_dir`: `video_XXXX.mp4` (H.264, yuv420p, or MPEG-4 part 2 when libx264 is missing),
`annotations.jsonl` with one row per video (`video`, `video_id`, `caption`, `label`, `label_name`, `digit`,
`color`, `split` (every 5th video "test", the rest "train"), `fps`, `num_frames`, `size`), readable by
`parse_captions` and `parse_labels`, and `classes.json` (the 8 motion names in label order).
Everything is a function of `seed` (video i draws from `numpy.random.default_rng([seed, i])`, so adding
videos leaves the first ones unchanged).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from vidslim.data.records import PathLike
from vidslim.errors import ConfigError, SamplingError
from vidslim.io.limits import MAX_FRAMES, check_fps, check_size
from vidslim.io.paths import output_folder

# 5x7 bitmaps of the digits, one string per row, '#' = ink
DIGITS: tuple[tuple[str, ...], ...] = (
    (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
)

# (first direction, second direction); the index is the class label
MOTIONS: tuple[tuple[str, str], ...] = (
    ("left", "up"), ("left", "down"), ("right", "up"), ("right", "down"),
    ("up", "left"), ("up", "right"), ("down", "left"), ("down", "right"),
)
CLASSES: tuple[str, ...] = tuple(f"{a}, then {b}" for a, b in MOTIONS)
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40), "green": (40, 210, 70), "blue": (60, 110, 250),
    "yellow": (240, 220, 40), "white": (250, 250, 250), "magenta": (230, 60, 220),
}
# (dx, dy) per unit step, y pointing down
STEPS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}


@dataclass(frozen=True)
class SynthVideo:
    """What one synthetic video shows."""

    digit: int
    color: str
    motion: int
    positions: np.ndarray  # int [T, 2]: (x, y) of the glyph's top-left corner in each frame

    @property
    def caption(self) -> str:
        first, second = MOTIONS[self.motion]
        return f"a {self.color} {self.digit} moves {first}, then {second}"


def glyph(digit: int, scale: int) -> np.ndarray:
    """bool [7 * scale, 5 * scale] mask of `digit`."""
    rows = np.array([[c == "#" for c in row] for row in DIGITS[digit]], dtype=bool)
    return rows.repeat(scale, axis=0).repeat(scale, axis=1)


def glyph_scale(size: int) -> int:
    """Pixels per font dot for a frame of `size`: the glyph is about 0.4 of the frame tall."""
    return max(1, round(size / 18))


def background(size: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [size, size, 3]: smooth muted colour blobs plus fine static grain (the same in every frame)."""
    coarse = rng.uniform(30, 130, size=(5, 5, 3))
    grid = np.linspace(0, 4, size)
    i0 = np.clip(np.floor(grid).astype(int), 0, 3)
    frac = grid - i0
    rows = coarse[i0] * (1 - frac)[:, None, None] + coarse[i0 + 1] * frac[:, None, None]  # [size, 5, 3]
    image = rows[:, i0] * (1 - frac)[None, :, None] + rows[:, i0 + 1] * frac[None, :, None]
    image += rng.normal(0, 6, size=(size, size, 1))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def plan_video(size: int, num_frames: int, rng: np.random.Generator) -> SynthVideo:
    """Draw a digit, colour and motion, and the glyph's path: `num_frames // 2` steps, then a 90-degree turn."""
    digit = int(rng.integers(10))
    color = list(COLORS)[int(rng.integers(len(COLORS)))]
    motion = int(rng.integers(len(MOTIONS)))
    scale = glyph_scale(size)
    room = np.array([size - 5 * scale, size - 7 * scale], dtype=np.float64)  # free x, y travel
    first = num_frames // 2
    steps = np.zeros((num_frames, 2))
    for name, lo, hi in ((MOTIONS[motion][0], 1, first), (MOTIONS[motion][1], first, num_frames)):
        steps[lo:hi] = STEPS[name]
    # the path per axis spans |cumulative steps| * speed; fit the largest axis span into the free room
    travel = np.cumsum(steps, axis=0)
    span = travel.max(axis=0) - travel.min(axis=0)
    speed = max(1.0, size / 40)
    fit = np.where(span > 0, room / np.maximum(span, 1), np.inf).min()
    speed = min(speed, float(fit))
    path = travel * speed
    low = -path.min(axis=0)
    high = room - path.max(axis=0)
    start = low + rng.uniform(0, 1, size=2) * np.maximum(high - low, 0)
    positions = np.rint(start + path).astype(np.int64)
    return SynthVideo(digit, color, motion, positions)


def render(video: SynthVideo, size: int, backdrop: np.ndarray) -> np.ndarray:
    """uint8 [T, size, size, 3] frames: the glyph drawn over the backdrop at each position."""
    mask = glyph(video.digit, glyph_scale(size))
    h, w = mask.shape
    frames = np.repeat(backdrop[None], len(video.positions), axis=0)
    color = np.array(COLORS[video.color], dtype=np.uint8)
    for t, (x, y) in enumerate(video.positions):
        frames[t, y : y + h, x : x + w][mask] = color
    return frames


def write_mp4(path: PathLike, frames: np.ndarray, fps: float, codec: str = "libx264") -> None:
    """Encode uint8 [T, H, W, 3] frames (H, W even) at `fps`; H.264 at near-visually-lossless quality.

    One encoder thread: x264's frame threads make the bitstream depend on timing, and the data must be the
    same bytes for the same seed.
    """
    rate = Fraction(fps).limit_denominator(1001)
    options = {"crf": "18", "preset": "veryfast", "threads": "1"} if codec == "libx264" else {"threads": "1"}
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.height, stream.width = int(frames.shape[1]), int(frames.shape[2])
        stream.pix_fmt = "yuv420p"
        if codec != "libx264":
            stream.bit_rate = 2_000_000
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode(None))


#: videos in one synthetic data set, and bytes of one video's frames (all of them are rendered in memory)
MAX_VIDEOS = 1_000_000
MAX_VIDEO_BYTES = 1 << 30


def check_synthetic(num_videos: Any, fps: Any, seconds: Any, size: Any,
                    names: Callable[[str], str] = lambda name: name) -> int:
    """Frames per video for these settings, or `ConfigError` naming the setting (`names` spells it, e.g. --fps)
    when one is out of range or a video would not fit in memory (`vidslim.io.limits` bounds rate and size)."""
    if not isinstance(num_videos, int) or isinstance(num_videos, bool) or not 1 <= num_videos <= MAX_VIDEOS:
        raise ConfigError(f"{names('num_videos')} must be a whole number from 1 to {MAX_VIDEOS}, got {num_videos!r}")
    try:
        check_fps(fps, names("fps"))
        check_size(size, names("size"), minimum=16)
    except SamplingError as error:
        raise ConfigError(str(error)) from None
    if size % 2:
        raise ConfigError(f"{names('size')} must be an even number of pixels (H.264 needs even sizes), got {size}")
    number = isinstance(seconds, int | float) and not isinstance(seconds, bool)
    if not number or not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"{names('seconds')} must be a positive number of seconds, got {seconds!r}")
    num_frames = max(2, round(fps * seconds))
    if num_frames > MAX_FRAMES or num_frames * size * size * 3 > MAX_VIDEO_BYTES:
        raise ConfigError(f"{names('fps')} {fps:g} x {names('seconds')} {seconds:g} = {num_frames} frames of "
                          f"{size} x {size} px per video is more than vidslim renders ({MAX_FRAMES} frames, "
                          f"{MAX_VIDEO_BYTES >> 20} MB); ask for fewer seconds, a lower rate or a smaller size")
    return num_frames


def make_synthetic(
    out_dir: PathLike,
    num_videos: int = 16,
    fps: float = 8.0,
    seconds: float = 4.0,
    size: int = 64,
    seed: int = 0,
    codec: str | None = None,
    progress: bool = False,
) -> Path:
    """Write `num_videos` synthetic videos with captions and motion labels to `out_dir`; return the
    annotations.jsonl path (see the module docstring for what is written)."""
    num_frames = check_synthetic(num_videos, fps, seconds, size)
    if codec is None:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    out = output_folder(out_dir, "out_dir")
    rows = []
    indices = range(num_videos)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="synth videos", unit="video")
    for i in indices:
        rng = np.random.default_rng([seed, i])
        backdrop = background(size, rng)
        video = plan_video(size, num_frames, rng)
        name = f"video_{i:04d}"
        write_mp4(out / f"{name}.mp4", render(video, size, backdrop), fps, codec)
        rows.append({
            "video": f"{name}.mp4", "video_id": name, "caption": video.caption, "label": video.motion,
            "label_name": CLASSES[video.motion], "digit": video.digit, "color": video.color,
            "split": "test" if i % 5 == 4 else "train", "fps": fps, "num_frames": num_frames, "size": size,
        })
    annotations = out / "annotations.jsonl"
    annotations.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    (out / "classes.json").write_text(json.dumps(list(CLASSES), indent=1) + "\n", encoding="utf-8")
    return annotations
