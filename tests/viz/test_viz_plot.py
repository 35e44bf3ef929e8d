"""`plot_speedup`: file and size, exact bytes on a rerun, background / curve / marker pixels where the axes put them,
label placement inside the canvas, and the axis range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidslim.errors import ConfigError
from vidslim.viz import plot_speedup, render_speedup
from vidslim.viz.plot import BACKGROUND, CANVAS, CURVE, POINT, nice_step, place_label, speedup_axes

POINTS = [("dense", 1.0, 1.0), ("RLT", 0.6, 1.3), ("TempMe", 0.35, 2.1), ("a rather long label", 0.98, 2.5)]


@pytest.fixture(scope="module")
def picture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    path = plot_speedup(POINTS, tmp_path_factory.mktemp("plot") / "sub" / "speedup.png", title="a test plot")
    with Image.open(path) as image:
        assert image.format == "PNG"
        return path, np.asarray(image.convert("RGB"))


def test_file_size_and_determinism(picture: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, pixels = picture
    assert path.is_file() and pixels.shape == (CANVAS[1], CANVAS[0], 3)
    again = plot_speedup(POINTS, tmp_path / "again.png", title="a test plot")
    assert again.read_bytes() == path.read_bytes()
    assert render_speedup(POINTS, size=(320, 240)).size == (320, 240)


def test_axes_range() -> None:
    assert nice_step(3.19) == 0.5 and nice_step(2.2) == 0.5 and nice_step(40) == 5
    axes = speedup_axes(POINTS)
    assert axes.y_max == 3.0 and axes.y_step == 0.5  # 1.1 · 2.5 = 2.75 -> next tick 3.0
    assert speedup_axes([("a", 0.9, 1.05)]).y_max == 2.0  # never below 2, so the ideal curve shows
    assert axes.px(0, 0) == (axes.left, axes.bottom) and axes.px(1, axes.y_max) == (axes.right, axes.top)


def near(pixels: np.ndarray, at: tuple[int, int], color: tuple[int, int, int], radius: int = 1) -> bool:
    col, row = at
    patch = pixels[row - radius : row + radius + 1, col - radius : col + radius + 1]
    return bool((patch == color).all(-1).any())


def test_background_curve_and_markers(picture: tuple[Path, np.ndarray]) -> None:
    _, pixels = picture
    axes = speedup_axes(POINTS)
    for corner in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
        assert tuple(pixels[corner]) == BACKGROUND
    for kept in (0.4, 0.5, 0.8):  # on the ideal curve (away from markers and the legend)
        assert near(pixels, axes.px(kept, 1 / kept), CURVE)
    assert not near(pixels, axes.px(0.7, 0.5), CURVE, radius=3)  # far below the curve: no curve colour
    for _, kept, speedup in POINTS[1:3]:
        col, row = axes.px(kept, speedup)
        assert tuple(pixels[row, col]) == POINT and tuple(pixels[row, col + 3]) == POINT
    col, row = axes.px(0.9, axes.y_step / 2)  # between grid lines, below the curve, no label there
    assert tuple(pixels[row, col]) == BACKGROUND


def test_labels_stay_on_the_canvas(picture: tuple[Path, np.ndarray]) -> None:
    # a dot at the right edge: the label goes to its left
    box = place_label(150, 16, (630, 100), (640, 440), [])
    assert box == (630 - 7 - 150, 100 - 7 - 16, 630 - 7 - 1, 100 - 7 - 1)
    # the first place is taken: the next free one (right, below)
    taken = [(110, 70, 200, 92)]
    assert place_label(40, 16, (100, 100), (640, 440), taken) == (107, 107, 146, 122)
    # nothing fits: moved inside
    left, top, _, bottom = place_label(700, 30, (5, 5), (640, 440), [])
    assert left >= 0 and top >= 0 and bottom < 440
    # in the picture: the long label at kept 0.98 is drawn left of its dot, so dark text pixels sit there
    _, pixels = picture
    axes = speedup_axes(POINTS)
    col, row = axes.px(0.98, 2.5)
    region = pixels[row - 30 : row + 30, col - 160 : col - 6]
    assert (region.sum(-1) < 200).any()


def test_bad_points_are_named() -> None:
    with pytest.raises(ConfigError, match=r"'x'.*kept_fraction"):
        render_speedup([("x", 0.0, 2.0)])
    with pytest.raises(ConfigError, match="speedup"):
        render_speedup([("y", 0.5, -1.0)])
    with pytest.raises(ConfigError, match=r"\.png"):
        plot_speedup(POINTS, "plot.jpg")


def test_place_label_moves_further_out_when_the_near_places_are_taken() -> None:
    from vidslim.viz.plot import MARKER, place_label

    anchor, width, height = (200, 200), 40, 10
    near = place_label(width, height, anchor, (400, 400), [])
    gap = MARKER + 3
    assert near == (200 + gap, 200 - gap - height, 200 + gap + width - 1, 200 - gap - 1)
    # a box over the six near places (right/left, above/below and centred, one label height around the dot)
    taken = [(200 - gap - width - 2, 200 - gap - height - 4, 200 + gap + width + 2, 200 + gap + height + 4)]
    far = place_label(width, height, anchor, (400, 400), taken)
    out = height + 2
    # right above, right below, left above, left below one label height out all touch the box: centred above it
    assert far == (200 - width // 2, 200 - gap - height - 2 - out, 200 - width // 2 + width - 1, 200 - gap - 3 - out)
    assert far[3] < taken[0][1]


def test_spread_bars_and_unreliable_points_are_hollow_grey() -> None:
    from vidslim.viz.plot import SHAKY

    points = [("ok", 0.5, 1.8, 1.7, 1.9, True), ("shaky", 0.3, 1.2, 0.6, 2.6, False)]
    image = render_speedup(points)
    axes = speedup_axes(points)
    assert axes.y_max >= 2.6 * 1.1 - 1e-9  # the top of the widest bar fits
    ok, shaky = axes.px(0.5, 1.8), axes.px(0.3, 1.2)
    assert image.getpixel(ok) == POINT
    assert image.getpixel(shaky) == BACKGROUND  # a ring, not a dot: not a plain fact
    assert image.getpixel((shaky[0], axes.px(0, 2.4)[1])) == SHAKY  # the spread bar above it
    with pytest.raises(ConfigError, match="low <= speedup <= high"):
        render_speedup([("bad", 0.5, 1.0, 1.2, 1.5, True)])


def test_series_share_a_colour_a_joining_line_and_a_legend_row() -> None:
    from vidslim.viz.colours import METHOD_COLOURS
    from vidslim.viz.plot import SHAKY, series_colours

    points = [("r=2", 0.7, 1.3, 1.25, 1.35, True, "tome"), ("r=8", 0.4, 2.2, 2.1, 2.3, True, "tome"),
              ("keep=0.5", 0.5, 1.5, 0.9, 2.6, False, "tokenprune")]  # fmt: skip
    PALETTE = (METHOD_COLOURS["tome"], METHOD_COLOURS["tokenprune"])
    assert series_colours(points) == {"tome": PALETTE[0], "tokenprune": PALETTE[1]}
    note = "2 clips, 1 thread"
    image = render_speedup(points, note=note)
    axes = speedup_axes(points, note=note)
    assert axes.top > speedup_axes(points).top  # the note takes a line above the box
    a, b = axes.px(0.7, 1.3), axes.px(0.4, 2.2)
    assert image.getpixel(a) == PALETTE[0] and image.getpixel(b) == PALETTE[0]
    mid = ((a[0] + b[0]) // 2, (a[1] + b[1]) // 2)  # on the line joining the tome points
    pixels = np.asarray(image)
    assert near(pixels, mid, PALETTE[0], radius=1)
    shaky = axes.px(0.5, 1.5)
    assert image.getpixel(shaky) == BACKGROUND and near(pixels, shaky, PALETTE[1], radius=4)  # a ring in its colour
    assert image.getpixel((shaky[0], axes.px(0, 2.5)[1])) == SHAKY  # and a grey bar: not a plain fact
    legend = pixels[axes.top : axes.top + 140, axes.right - 300 : axes.right]
    for colour in (PALETTE[0], PALETTE[1], CURVE):
        assert (legend == colour).all(-1).any()


def test_a_method_keeps_its_colour_across_plots() -> None:
    """The colour belongs to the method's name, not to its place in a plot: TempMe drawn first in one picture and
    after two other methods in another is the same colour in both, and so is "tempme (clip)"."""
    from vidslim.viz.colours import EXTRA, METHOD_COLOURS, method_colour
    from vidslim.viz.plot import CURVE, SHAKY, series_colours

    alone = [("r=2", 0.6, 1.5, 1.4, 1.6, True, "tempme")]
    crowded = [("tau=0.1", 0.5, 1.9, 1.8, 2.0, True, "rlt"), ("r=8", 0.7, 1.3, 1.2, 1.4, True, "tome"), *alone]
    assert series_colours(alone)["tempme"] == series_colours(crowded)["tempme"] == METHOD_COLOURS["tempme"]
    assert method_colour("tempme (clip)") == METHOD_COLOURS["tempme"]
    for image, points in ((render_speedup(alone), alone), (render_speedup(crowded), crowded)):
        assert image.getpixel(speedup_axes(points).px(0.6, 1.5)) == METHOD_COLOURS["tempme"]
    colours = list(METHOD_COLOURS.values())
    assert len(set(colours)) == len(colours) and CURVE not in colours and SHAKY not in colours  # all distinct
    assert method_colour("somebody_new") == method_colour("somebody_new") in EXTRA  # a later method: stable
