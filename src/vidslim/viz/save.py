"""Write drawn frames to a file: a PNG contact sheet, an animated GIF, or an H.264 MP4.

`save_frames(frames, path)` picks the format from the suffix:

- `.png`: one still picture, `contact_sheet`: the frames tiled left to right, top to bottom, `columns` per row
  (8 by default), `GAP` pixels of `BACKGROUND` between and around them, under a title line (wrapped to the
  sheet's width) when a title is given. PNG is lossless, so the tiles hold the frames' exact pixels.
- `.gif`: every frame, animated at `fps` (GIF stores delays in hundredths of a second), looping forever.
  Pillow merges identical consecutive frames into one longer frame.
- `.mp4`: every frame at `fps`, H.264 (libx264; MPEG-4 part 2 where FFmpeg lacks libx264), yuv420p. yuv420p
  needs an even width and height, so an odd-sized clip gets one black row or column at the bottom or right.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from vidslim.errors import ConfigError

FORMATS = (".png", ".gif", ".mp4")
#: pixels between tiles and around the sheet
GAP = 2
#: RGB of the sheet behind the tiles and the title
BACKGROUND = (24, 24, 24)
TITLE_COLOR = (235, 235, 235)
TITLE_SIZE = 13  # font size of the title, in pixels
TITLE_LINE = 17  # height of one title line, in pixels


def _as_array(frames: torch.Tensor | np.ndarray) -> np.ndarray:
    array = frames.cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8 or len(array) == 0:
        raise ConfigError(f"frames must be uint8 RGB [N, H, W, 3] with N >= 1, got {array.dtype} {array.shape}")
    return np.ascontiguousarray(array)


def load_font(size: int = TITLE_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at `size` px (FreeType), or its fixed bitmap font where FreeType is missing."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def wrap(text: str, width: int, font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> list[str]:
    """Greedy word wrap of `text` into lines at most `width` pixels wide (a longer single word stays whole)."""
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if line and measure.textlength(candidate, font=font) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def contact_sheet(
    frames: torch.Tensor | np.ndarray, title: str | None = None, columns: int | None = None
) -> np.ndarray:
    """Tile frames [N, H, W, 3] into one uint8 picture [sheet_h, sheet_w, 3] under an optional title.

    Tile i sits at row i // columns, column i % columns, at
    (top, left) = (title_h + GAP + row·(H + GAP), GAP + column·(W + GAP)); the sheet is
    columns·(W + GAP) + GAP wide and title_h + rows·(H + GAP) + GAP tall, with title_h = 0 without a title.
    """
    array = _as_array(frames)
    n, h, w, _ = array.shape
    columns = min(n, 8) if columns is None else int(columns)
    if columns < 1:
        raise ConfigError(f"columns must be >= 1, got {columns}")
    rows = math.ceil(n / columns)
    width = columns * (w + GAP) + GAP
    font = load_font()
    lines = wrap(title, width - 2 * GAP, font) if title else []
    title_h = len(lines) * TITLE_LINE + 2 * GAP if lines else 0
    sheet = np.empty((title_h + rows * (h + GAP) + GAP, width, 3), dtype=np.uint8)
    sheet[:] = BACKGROUND
    index = np.arange(n)
    tops = title_h + GAP + (index // columns) * (h + GAP)
    lefts = GAP + (index % columns) * (w + GAP)
    for frame, top, left in zip(array, tops, lefts, strict=True):  # one copy per frame, not per pixel
        sheet[top : top + h, left : left + w] = frame
    if lines:
        image = Image.fromarray(sheet)
        draw = ImageDraw.Draw(image)
        for i, line in enumerate(lines):
            draw.text((GAP + 2, GAP + i * TITLE_LINE), line, fill=TITLE_COLOR, font=font)
        sheet = np.asarray(image).copy()
    return sheet


def _even(array: np.ndarray) -> np.ndarray:
    """Pad [N, H, W, 3] with one black row / column where H / W is odd (yuv420p needs even sizes)."""
    pad_h, pad_w = array.shape[1] % 2, array.shape[2] % 2
    if not pad_h and not pad_w:
        return array
    return np.pad(array, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))


def write_gif(array: np.ndarray, path: Path, fps: float) -> None:
    """Animated GIF of every frame at `fps` (delays rounded to GIF's 10 ms steps), looping forever."""
    images = [Image.fromarray(frame) for frame in array]
    duration = max(10, round(100 / fps) * 10)
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0)


def write_mp4(array: np.ndarray, path: Path, fps: float) -> None:
    """H.264 (yuv420p, even size) of every frame at `fps`; MPEG-4 part 2 where libx264 is missing."""
    array = _even(array)
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    options = {"crf": "18", "preset": "veryfast"} if codec == "libx264" else {}
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001), options=options)
        stream.height, stream.width = int(array.shape[1]), int(array.shape[2])
        stream.pix_fmt = "yuv420p"
        if codec != "libx264":
            stream.bit_rate = 4_000_000
        for frame in array:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


def save_frames(
    frames: torch.Tensor | np.ndarray,
    path: str | Path,
    fps: float = 8.0,
    title: str | None = None,
    columns: int | None = None,
) -> Path:
    """Write uint8 frames [N, H, W, 3] to `path` (.png contact sheet, .gif, .mp4); returns the path.

    fps: frame rate of a GIF or MP4. title and columns: the PNG sheet's title line and tiles per row (GIF and
    MP4 hold the frames only). Missing parent folders are created.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(f"{path}: cannot write {suffix or 'a file without a suffix'}; name the picture "
                          f"{' or '.join(f'*{f}' for f in FORMATS)}")
    if not (math.isfinite(fps) and fps > 0):
        raise ConfigError(f"fps must be a positive number, got {fps}")
    array = _as_array(frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        Image.fromarray(contact_sheet(array, title, columns)).save(path)
    elif suffix == ".gif":
        write_gif(array, path, fps)
    else:
        write_mp4(array, path, fps)
    return path
