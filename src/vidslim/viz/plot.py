"""Speedup against the fraction of tokens kept, as a PNG drawn with Pillow alone (no matplotlib).

    plot_speedup([("RLT", 0.62, 1.5), ("TempMe", 0.35, 2.1), ("dense", 1.0, 1.0)], "speedup.png")
    plot_speedup([("RLT", 0.62, 1.5, 1.4, 1.6, True), ("ToMe", 0.5, 1.2, 0.6, 2.0, False)], "pareto.png")

A point is (label, kept, speedup) or (label, kept, speedup, low, high, reliable), or that with a seventh field, its
series (a method's name): the long forms draw the spread (low to high, e.g. the interquartile range of per-round
speedups) as a vertical bar, and a point that is not reliable as a hollow ring with "?" after its label and a
grey bar, so a figure the timer flagged never reads as a fact. Points of one series share their method's colour
(`vidslim.viz.colours.method_colour`: the same in every plot, so RLT is the same red in the demo's plot and in the
tune Pareto picture), are joined by a thin line in order of kept tokens (unless `join=False`: points of one method
on different models), are named once in the legend, and their labels (then only the setting, e.g. "r=6") are
written in that colour; a label pushed away from its dot gets a thin leader line. `note` (e.g. the clips, threads,
load and the timer's verdict) is written under the title.

The picture: a white canvas, the plot box with light grid lines at the ticks, x = kept tokens (0 to 1), y =
speedup (0 to a round number above the largest point, at least 2), the ideal `speedup = 1/kept` curve in
`CURVE` (what a method would reach if cost were linear in tokens), each measured point as a `POINT` dot with its
label beside it, and a legend. Labels try six places around their dot and take the first that lies inside the
canvas and overlaps no dot, legend or earlier label (else the first inside the canvas), so none runs off the
edge. Only Pillow's built-in font and integer coordinates are used: the same points give the same bytes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from vidslim.errors import ConfigError
from vidslim.viz.colours import method_colour
from vidslim.viz.save import load_font

CANVAS = (640, 440)
#: pixels left, top, right, bottom between the canvas edge and the plot box (room for ticks, labels, title)
MARGINS = (68, 40, 24, 56)
BACKGROUND = (255, 255, 255)
AXIS = (0, 0, 0)
GRID = (226, 226, 226)
CURVE = (31, 119, 180)
POINT = (214, 39, 40)
SHAKY = (150, 150, 150)
TEXT = (20, 20, 20)
LEADER = (170, 170, 170)
NOTE_SIZE = 11
MARKER = 4  # dot radius, pixels
FONT_SIZE = 12
TITLE_SIZE = 15

Box = tuple[int, int, int, int]  # left, top, right, bottom (inclusive)


def nice_step(span: float, max_ticks: int = 8) -> float:
    """The smallest 1, 2 or 5 · 10^k step that cuts `span` into at most `max_ticks` intervals."""
    base = 10.0 ** math.floor(math.log10(span / max_ticks))
    for mult in (1, 2, 5, 10):
        if span / (mult * base) <= max_ticks:
            return mult * base
    return 10 * base


@dataclasses.dataclass(frozen=True)
class Axes:
    """The plot box on the canvas (pixels, inclusive) and the data range it shows: x in [0, 1], y in [0, y_max]."""

    left: int
    top: int
    right: int
    bottom: int
    y_max: float
    y_step: float

    def px(self, x: float, y: float) -> tuple[int, int]:
        """Canvas pixel of data point (x, y)."""
        col = self.left + round(x * (self.right - self.left))
        row = self.bottom - round(y / self.y_max * (self.bottom - self.top))
        return col, row


Point = tuple  # (label, kept, speedup) or (label, kept, speedup, low, high, reliable[, series])


def _top(point: Point) -> float:
    """The highest value a point draws: its speedup, or the top of its spread bar."""
    return max(float(point[2]), float(point[4])) if len(point) >= 6 else float(point[2])


def _reliable(point: Point) -> bool:
    return len(point) < 6 or bool(point[5])


def _series(point: Point) -> str | None:
    return str(point[6]) if len(point) == 7 and point[6] is not None else None


def series_colours(points: Sequence[Point]) -> dict[str, tuple[int, int, int]]:
    """Each series' colour (its method's, `method_colour`), in order of first appearance."""
    names = list(dict.fromkeys(s for s in map(_series, points) if s is not None))
    return {name: method_colour(name) for name in names}


def speedup_axes(points: Sequence[Point], size: tuple[int, int] = CANVAS, note: str | None = None) -> Axes:
    """The axes `plot_speedup` draws `points` on: y_max is the next tick above 1.1 x the largest speedup (>= 2);
    a note under the title moves the plot box down by one line."""
    top_value = max([2.0, *(1.1 * _top(p) for p in points)])
    step = nice_step(top_value)
    y_max = math.ceil(top_value / step - 1e-9) * step
    left, top, right, bottom = MARGINS
    top += len(note_lines(note, size[0])) * (NOTE_SIZE + 4) + 2 if note else 0
    return Axes(left, top, size[0] - 1 - right, size[1] - 1 - bottom, y_max, step)


def note_lines(note: str | None, width: int) -> list[str]:
    """The note's "; "-separated parts joined greedily into lines that fit `width` pixels less a margin (a part
    longer than a line gets a line of its own)."""
    if not note:
        return []
    font = load_font(NOTE_SIZE)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines: list[str] = []
    for part in note.split("; "):
        if lines and measure.textlength(f"{lines[-1]}; {part}", font=font) <= width - 16:
            lines[-1] = f"{lines[-1]}; {part}"
        else:
            lines.append(part)
    return lines


def _check(points: Sequence[Point], size: tuple[int, int]) -> None:
    for point in points:
        if len(point) not in (3, 6, 7):
            raise ConfigError(f"plot_speedup: each point is (label, kept_fraction, speedup) or (label, kept_fraction, "
                              f"speedup, low, high, reliable[, series]), got {point!r}")
        label, kept, speedup = point[:3]
        if len(point) >= 6 and not (0 < float(point[3]) <= float(speedup) <= float(point[4])):
            raise ConfigError(f"plot_speedup: point {label!r} needs 0 < low <= speedup <= high, got {point[2:5]}")
        if not (0.0 < float(kept) <= 1.0):
            raise ConfigError(f"plot_speedup: point {label!r} keeps {kept} of the tokens; kept_fraction is in (0, 1]")
        if not (math.isfinite(float(speedup)) and float(speedup) > 0):
            raise ConfigError(f"plot_speedup: point {label!r} has speedup {speedup}; give a positive number")
    if size[0] < 240 or size[1] < 180:
        raise ConfigError(f"plot_speedup: size {size} is too small for axes and labels; use at least (240, 180)")


def _overlaps(a: Box, b: Box) -> bool:
    return not (a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1])


def place_label(width: int, height: int, anchor: tuple[int, int], canvas: tuple[int, int], taken: Sequence[Box]) -> Box:
    """Where a width x height label of the dot at `anchor` goes: the first of six places around the dot (right
    above, right below, left above, left below, above, below), tried again one and two label heights further out
    when crowded, inside the canvas that overlaps nothing in `taken`; else the first inside the canvas; else the
    right-above place moved into the canvas."""
    x, y = anchor
    gap = MARKER + 3
    corners = []
    for step in range(3):
        out = step * (height + 2)
        corners += [
            (x + gap, y - gap - height - out),
            (x + gap, y + gap + out),
            (x - gap - width, y - gap - height - out),
            (x - gap - width, y + gap + out),
            (x - width // 2, y - gap - height - 2 - out),
            (x - width // 2, y + gap + 2 + out),
        ]
    boxes = [(cx, cy, cx + width - 1, cy + height - 1) for cx, cy in corners]
    inside = [b for b in boxes if b[0] >= 0 and b[1] >= 0 and b[2] < canvas[0] and b[3] < canvas[1]]
    free = [b for b in inside if not any(_overlaps(b, t) for t in taken)]
    if free:
        return free[0]
    if inside:
        return inside[0]
    cx = min(max(corners[0][0], 0), max(canvas[0] - width, 0))
    cy = min(max(corners[0][1], 0), max(canvas[1] - height, 0))
    return (cx, cy, cx + width - 1, cy + height - 1)


def _fmt(value: float) -> str:
    return f"{value:g}"


def _draw_frame(draw: ImageDraw.ImageDraw, axes: Axes) -> None:
    """Grid lines, the plot box, ticks and tick labels."""
    font = load_font(FONT_SIZE)
    for i in range(6):  # x ticks at 0, 0.2, ..., 1
        col, _ = axes.px(i / 5, 0)
        draw.line([(col, axes.top), (col, axes.bottom)], fill=GRID)
        draw.line([(col, axes.bottom), (col, axes.bottom + 4)], fill=AXIS)
        draw.text((col, axes.bottom + 6), _fmt(round(i / 5, 1)), fill=TEXT, font=font, anchor="mt")
    for i in range(round(axes.y_max / axes.y_step) + 1):
        value = i * axes.y_step
        _, row = axes.px(0, value)
        draw.line([(axes.left, row), (axes.right, row)], fill=GRID)
        draw.line([(axes.left - 4, row), (axes.left, row)], fill=AXIS)
        draw.text((axes.left - 6, row), _fmt(round(value, 6)), fill=TEXT, font=font, anchor="rm")
    draw.rectangle([axes.left, axes.top, axes.right, axes.bottom], outline=AXIS)


def _draw_axis_titles(image: Image.Image, axes: Axes, title: str, note: str | None = None) -> None:
    draw = ImageDraw.Draw(image)
    font = load_font(FONT_SIZE)
    middle = (axes.left + axes.right) // 2
    draw.text(
        (middle, image.height - 6), "kept tokens (fraction of the dense model's)", fill=TEXT, font=font, anchor="md"
    )
    draw.text((image.width // 2, 8), title, fill=TEXT, font=load_font(TITLE_SIZE), anchor="mt")
    for i, line in enumerate(note_lines(note, image.width)):
        draw.text((image.width // 2, 8 + TITLE_SIZE + 6 + i * (NOTE_SIZE + 4)), line, fill=TEXT,
                  font=load_font(NOTE_SIZE), anchor="mt")
    label = "speedup (x)"
    width = round(draw.textlength(label, font=font)) + 4
    strip = Image.new("RGB", (width, FONT_SIZE + 6), BACKGROUND)
    ImageDraw.Draw(strip).text((2, 2), label, fill=TEXT, font=font)
    strip = strip.rotate(90, expand=True)
    image.paste(strip, (4, (axes.top + axes.bottom) // 2 - strip.height // 2))


def _curve(axes: Axes) -> list[tuple[int, int]]:
    """Pixel polyline of y = 1/x from x = 1/y_max (the top of the box) to x = 1, one vertex per pixel column."""
    first, _ = axes.px(1.0 / axes.y_max, 0)
    cols = range(first, axes.right + 1)
    return [(c, axes.px(0, 1.0 / max((c - axes.left) / (axes.right - axes.left), 1e-9))[1]) for c in cols]


def _legend(draw: ImageDraw.ImageDraw, axes: Axes, colours: dict[str, tuple[int, int, int]], spread: bool,
            shaky: bool) -> Box:
    """The legend in the plot box's top-right corner (the ideal curve, each series or "measured", the spread bar
    and the unreliable ring when drawn); returns its box."""
    font = load_font(FONT_SIZE)
    rows: list[tuple[str, str, tuple[int, int, int]]] = [("line", "speedup = 1/kept (ideal)", CURVE)]
    rows += [("dot", name, colour) for name, colour in colours.items()] or [("dot", "measured", POINT)]
    if spread:
        rows.append(("bar", "bar: IQR of paired rounds", TEXT))
    if shaky or not spread:  # the ring is always explained where the old three-line legend explained it
        rows.append(("ring", "ring, ?: unreliable (spread too wide)", SHAKY))
    width = max(round(draw.textlength(text, font=font)) for _, text, _ in rows) + 34
    height = 16 * len(rows) + 8
    box = (axes.right - width - 6, axes.top + 6, axes.right - 6, axes.top + 6 + height)
    draw.rectangle(box, fill=BACKGROUND, outline=GRID)
    for i, (kind, text, colour) in enumerate(rows):
        row, mid = box[1] + 12 + 16 * i, box[0] + 15
        if kind == "line":
            draw.line([(box[0] + 6, row), (box[0] + 24, row)], fill=colour, width=2)
        elif kind == "dot":
            draw.ellipse([mid - MARKER, row - MARKER, mid + MARKER, row + MARKER], fill=colour)
        elif kind == "bar":
            draw.line([(mid, row - 6), (mid, row + 6)], fill=colour)
            draw.line([(mid - 3, row - 6), (mid + 3, row - 6)], fill=colour)
            draw.line([(mid - 3, row + 6), (mid + 3, row + 6)], fill=colour)
        else:
            draw.ellipse([mid - MARKER, row - MARKER, mid + MARKER, row + MARKER], outline=colour, width=2)
        draw.text((box[0] + 30, row), text, fill=TEXT, font=font, anchor="lm")
    return box


def _leader(draw: ImageDraw.ImageDraw, anchor: tuple[int, int], box: Box) -> None:
    """A thin line from a dot to its label when the label sits more than a dot's width away."""
    x = min(max(anchor[0], box[0]), box[2])
    y = min(max(anchor[1], box[1]), box[3])
    if max(abs(x - anchor[0]), abs(y - anchor[1])) > MARKER + 6:
        draw.line([anchor, (x, y)], fill=LEADER)


def render_speedup(
    points: Sequence[Point],
    title: str = "speedup against kept tokens",
    size: tuple[int, int] = CANVAS,
    note: str | None = None,
    join: bool = True,
) -> Image.Image:
    """The plot as an RGB Pillow image (see the module docstring); `plot_speedup` saves it. join=False: no line
    between the points of a series."""
    _check(points, size)
    axes = speedup_axes(points, size, note)
    colours = series_colours(points)
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    _draw_frame(draw, axes)
    draw.line(_curve(axes), fill=CURVE, width=2)
    for name, colour in (colours.items() if join else ()):  # each series joined in order of kept tokens
        line = sorted(axes.px(float(p[1]), float(p[2])) for p in points if _series(p) == name)
        if len(line) > 1:
            draw.line(line, fill=colour, width=1)
    taken = [_legend(draw, axes, colours, any(len(p) >= 6 for p in points), not all(map(_reliable, points)))]
    anchors = [axes.px(float(p[1]), float(p[2])) for p in points]
    for point, (col, row) in zip(points, anchors, strict=True):
        reliable = _reliable(point)
        series = _series(point)
        colour = colours[series] if series is not None else POINT if reliable else SHAKY
        if len(point) >= 6:
            bar = colour if reliable else SHAKY
            _, low = axes.px(0, float(point[3]))
            _, high = axes.px(0, float(point[4]))
            draw.line([(col, low), (col, high)], fill=bar, width=1)
            draw.line([(col - 3, low), (col + 3, low)], fill=bar)
            draw.line([(col - 3, high), (col + 3, high)], fill=bar)
            taken.append((col - 3, high, col + 3, low))  # no label hides a spread bar
        box = [col - MARKER, row - MARKER, col + MARKER, row + MARKER]
        if reliable:
            draw.ellipse(box, fill=colour)
        else:
            draw.ellipse(box, fill=BACKGROUND, outline=colour, width=2)
        taken.append((col - MARKER, row - MARKER, col + MARKER, row + MARKER))
    font = load_font(FONT_SIZE)
    for point, anchor in zip(points, anchors, strict=True):
        series = _series(point)
        label = str(point[0]) if _reliable(point) else f"{point[0]} ?"
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        box = place_label(right - left + 4, bottom - top + 4, anchor, size, taken)
        _leader(draw, anchor, box)
        if series:  # series labels sit among the joining lines: a white ground keeps them readable
            draw.rectangle([box[0] + 1, box[1] + 1, box[2] - 1, box[3] - 1], fill=BACKGROUND)
        draw.text((box[0] + 2 - left, box[1] + 2 - top), label, fill=colours.get(series, TEXT) if series else TEXT,
                  font=font)
        taken.append(box)
    _draw_axis_titles(image, axes, title, note)
    return image


def plot_speedup(
    points: Sequence[Point],
    path: str | Path,
    title: str = "speedup against kept tokens",
    size: tuple[int, int] = CANVAS,
    note: str | None = None,
    join: bool = True,
) -> Path:
    """Write the speedup plot of `points` [(label, kept_fraction in (0, 1], speedup > 0), ...] to a PNG at `path`.

    size: (width, height) of the canvas in pixels; note: line(s) under the title; join: a line through each
    series' points. Missing parent folders are created; returns the path.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"plot_speedup: {path} must end in .png (the plot is written as a PNG)")
    image = render_speedup(points, title, size, note, join)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path
