"""Pixel operations shared by the pictures: greying out, patch-grid outlines, and small number labels.

Everything is a pure, exact function of its input (integer arithmetic on uint8 frames, no fonts, no
anti-aliasing), so a test can predict every pixel of a drawing:

- `grey_out`: desaturate and dim. Luma in BT.601 fixed point, `Y = (77·R + 150·G + 29·B + 128) >> 8`, then
  `GREY_OFFSET + Y // 2` in all three channels (32..159): grey, darker than any kept colour, yet readable.
- `patch_border`: the one-pixel frame on the inside edge of every patch x patch cell.
- `number_stamps`: a label per integer value, a `LABEL_TEXT` number on a `LABEL_BOX` box drawn with a 3x5
  pixel font (scaled 2x when it fits the patch) at the top-left corner of a cell, just inside its border.
  Numbers, not a colour code, so they read without a legend at 224 px.
- `palette`: n distinct vivid colours (integer HSV, golden-ratio hue steps), one per merge group.
- `blend`: `(a·colour + (256 - a)·pixel + 128) >> 8` per channel, a in 0..256 (`alpha_256` converts a float).
- `cell_edges`: the inside edge of every cell that borders a cell with another value (lines between groups).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

#: grey level of a black pixel after `grey_out`; white becomes GREY_OFFSET + 127
GREY_OFFSET = 32
#: BT.601 luma weights in 8-bit fixed point (they sum to 256, so grey stays grey)
LUMA_WEIGHTS = (77, 150, 29)
#: RGB of the patch-grid outline drawn around kept cells
OUTLINE = (255, 214, 0)
#: RGB of label digits and of the box behind them
LABEL_TEXT = (255, 255, 255)
LABEL_BOX = (0, 0, 0)

#: RGB of the lines `cell_edges` draws between merge groups
GROUP_EDGE = (255, 255, 255)
#: colours per (max, min) ring of `palette`: 64 golden-ratio hue steps stay several 8-bit hue bins apart
RING = 64
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0

# codes of a stamp pixel
NONE, BOX, TEXT = 0, 1, 2

# 3x5 bitmaps of the digits, one string per row, '#' = ink
_DIGITS: dict[str, tuple[str, ...]] = {
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"),
    "3": ("###", "..#", "###", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", "..#", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "###"),
}


def grey_out(pixels: Tensor) -> Tensor:
    """Desaturated, dimmed copy of uint8 RGB pixels [..., 3]: `GREY_OFFSET + luma // 2` in every channel."""
    weights = torch.tensor(LUMA_WEIGHTS, dtype=torch.int32, device=pixels.device)
    luma = ((pixels.to(torch.int32) * weights).sum(dim=-1) + 128) >> 8
    grey = (GREY_OFFSET + luma // 2).to(torch.uint8)
    return grey.unsqueeze(-1).expand(pixels.shape).clone()


def patch_border(height: int, width: int, patch: int) -> Tensor:
    """bool [height, width]: True on the first and last row and column of every patch x patch cell."""
    rows = torch.arange(height) % patch
    cols = torch.arange(width) % patch
    on_row = (rows == 0) | (rows == patch - 1)
    on_col = (cols == 0) | (cols == patch - 1)
    return on_row[:, None] | on_col[None, :]


def text_bitmap(text: str, scale: int = 1) -> Tensor:
    """bool [5·scale, (4·len(text) - 1)·scale]: `text` (digits only) in the 3x5 font, one blank column between."""
    if not text or any(ch not in _DIGITS for ch in text):
        raise ValueError(f"text_bitmap draws digits only, got {text!r}")
    columns: list[list[bool]] = [[] for _ in range(5)]
    for i, ch in enumerate(text):
        for r, row in enumerate(_DIGITS[ch]):
            columns[r].extend(([False] if i else []) + [c == "#" for c in row])
    bitmap = torch.tensor(columns, dtype=torch.bool)
    return bitmap.repeat_interleave(scale, dim=0).repeat_interleave(scale, dim=1)


def label_box(value: int, patch: int) -> tuple[int, int, int, int, int] | None:
    """Where the label of `value` goes in a patch x patch cell: (top, left, height, width, scale) of its box.

    The box is the text plus a one-pixel margin, at (1, 1) just inside the cell's border; the font is scaled
    2x when the box still fits inside the border, else 1x; None when even 1x does not fit.
    """
    digits = len(str(value))
    for scale in (2, 1):
        height, width = 5 * scale + 2, (4 * digits - 1) * scale + 2
        if height <= patch - 2 and width <= patch - 2:
            return 1, 1, height, width, scale
    return None


def number_stamps(max_value: int, patch: int, min_value: int = 2) -> Tensor:
    """uint8 [max_value + 1, patch, patch]: stamp v is the label of v (codes NONE, BOX, TEXT).

    Values below `min_value` get an empty stamp (a run of one tubelet needs no label). Indexing the stamps with
    a map of values gives every cell its label in one gather, with no loop over cells.
    """
    stamps = torch.zeros(max_value + 1, patch, patch, dtype=torch.uint8)
    for value in range(max(min_value, 0), max_value + 1):
        box = label_box(value, patch)
        if box is None:
            continue
        top, left, height, width, scale = box
        stamps[value, top : top + height, left : left + width] = BOX
        text = text_bitmap(str(value), scale)
        region = stamps[value, top + 1 : top + 1 + text.shape[0], left + 1 : left + 1 + text.shape[1]]
        region[text] = TEXT
    return stamps


def paint(frames: Tensor, where: Tensor, color: tuple[int, int, int]) -> None:
    """Set the pixels of uint8 frames [..., H, W, 3] where the bool mask [..., H, W] is True to `color`, in place."""
    frames[where] = torch.tensor(color, dtype=torch.uint8, device=frames.device)


@functools.lru_cache(maxsize=8)
def _rings(count: int) -> tuple[tuple[int, int], ...]:
    """The first `count` (max, min) channel pairs of the palette: vivid ones first, then every pair with
    max - min >= 100 (so a ring always has at least 600 hue bins)."""
    first = [(255, 0), (255, 110), (175, 0), (215, 55), (255, 60), (135, 0)]
    coarse = [(hi, lo) for lo in range(0, 156, 20) for hi in range(255, lo + 99, -20)]
    fine = [(hi, lo) for lo in range(0, 156) for hi in range(255, lo + 99, -1)]
    seen: dict[tuple[int, int], None] = {}
    for pair in (*first, *coarse, *fine):
        seen.setdefault(pair, None)
        if len(seen) == count:
            break
    if len(seen) < count:
        raise ValueError(f"palette: at most {len(seen) * RING} distinct colours, asked for {count * RING}")
    return tuple(seen)


def palette(n: int) -> Tensor:
    """uint8 [n, 3]: n distinct colours, the same for every call (colour i never depends on n).

    Colours come in rings of `RING`; ring r has one (max, min) channel pair and steps the hue around the
    6·(max - min) integer hue bins by the golden ratio, so consecutive colours differ most in hue. Colours of
    different rings differ in their max or min channel, colours of one ring in their hue bin: all distinct.
    """
    if n <= 0:
        return torch.zeros(0, 3, dtype=torch.uint8)
    rings = _rings(math.ceil(n / RING))
    ring = torch.arange(n) // RING
    step = torch.arange(n) % RING
    pairs = torch.tensor(rings, dtype=torch.int64)[ring]
    hi, lo = pairs[:, 0], pairs[:, 1]
    span = hi - lo
    turn = torch.frac(step.double() * GOLDEN + ring.double() * 0.1)
    hue = torch.floor(turn * (6 * span).double()).long().clamp_max(6 * span - 1)
    sector, f = hue // span, hue % span
    rise, fall = lo + f, hi - f
    table = torch.stack(
        (
            torch.stack((hi, rise, lo), -1),
            torch.stack((fall, hi, lo), -1),
            torch.stack((lo, hi, rise), -1),
            torch.stack((lo, fall, hi), -1),
            torch.stack((rise, lo, hi), -1),
            torch.stack((hi, lo, fall), -1),
        ),
        dim=1,
    )  # [n, 6, 3]
    return table[torch.arange(n), sector].to(torch.uint8)


def alpha_256(alpha: float) -> int:
    """A blend weight in [0, 1] as the integer 0..256 `blend` takes."""
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (0: the frame, 1: the colour), got {alpha}")
    return round(float(alpha) * 256)


def blend(pixels: Tensor, colors: Tensor, alpha: int) -> Tensor:
    """uint8 (alpha·colour + (256 - alpha)·pixel + 128) >> 8 of pixels and colours [..., 3], alpha in 0..256."""
    mixed = alpha * colors.to(torch.int32) + (256 - alpha) * pixels.to(torch.int32) + 128
    return (mixed >> 8).to(torch.uint8)


def cell_edges(cells: Tensor, patch: int) -> Tensor:
    """bool [T, h·patch, w·patch]: the inside edge pixels of every cell of `cells` [T, h, w] on each side where the
    neighbouring cell holds another value (never along the frame's border)."""
    _, h, w = cells.shape
    up = torch.zeros_like(cells, dtype=torch.bool)
    down, left, right = up.clone(), up.clone(), up.clone()
    up[:, 1:] = cells[:, 1:] != cells[:, :-1]
    down[:, :-1] = up[:, 1:]
    left[:, :, 1:] = cells[:, :, 1:] != cells[:, :, :-1]
    right[:, :, :-1] = left[:, :, 1:]
    rows = torch.arange(patch, device=cells.device)
    first, last = rows == 0, rows == patch - 1

    def grow(side: Tensor) -> Tensor:
        return side.repeat_interleave(patch, 1).repeat_interleave(patch, 2)

    row_first = first.repeat(h)[None, :, None]
    row_last = last.repeat(h)[None, :, None]
    col_first = first.repeat(w)[None, None, :]
    col_last = last.repeat(w)[None, None, :]
    return (grow(up) & row_first) | (grow(down) & row_last) | (grow(left) & col_first) | (grow(right) & col_last)
