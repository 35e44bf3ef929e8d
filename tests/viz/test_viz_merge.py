"""`draw_merge_groups` checked pixel by pixel on hand-built source maps whose groups are known, and end to end on a
tiny random CLIP with a traced TempMe.

Hand-built CLIP layout: 2 frames of 8 x 8 pixels, 4 x 4 patches (a 2 x 2 grid), one CLS per frame, so the packed
original order is [cls0, f0p0, f0p1, f0p2, f0p3, cls1, f1p0, f1p1, f1p2, f1p3] (p = row · 2 + col). The final
tokens: 0 = cls0, 1 = cls1, 2 = {f0p0, f0p1} (merged in frame 0), 3 = {f0p3, f1p3} (merged across frames, as
ClipMe does), 4 = f0p2, 5 = f1p0 (singletons), 6 = {f1p1, f1p2}. Groups in raster order of their first patch:
token 2 -> group 0, token 3 -> group 1, token 6 -> group 2.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vidslim as vs
from vidslim.errors import ConfigError, TokenLayoutError
from vidslim.reduce.sources import SourceMap
from vidslim.tokens import NO_POSITION
from vidslim.viz import draw_merge_groups, draw_model_merges, group_map, palette
from vidslim.viz.draw import blend, cell_edges

P = 4
EDGE = (255, 255, 255)
HAND = SourceMap(torch.tensor([0, 2, 2, 4, 3, 1, 5, 6, 6, 3]), (5, 5))


def noise(t: int, side: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(t, side, side, 3), dtype=np.uint8)


def hand_blend(pixels: np.ndarray, color: np.ndarray, a: int) -> np.ndarray:
    """The documented formula written out: (a·colour + (256 - a)·pixel + 128) >> 8."""
    return ((a * color.astype(np.int64) + (256 - a) * pixels.astype(np.int64) + 128) >> 8).astype(np.uint8)


def cell(out: np.ndarray, t: int, p: int) -> np.ndarray:
    """The 4 x 4 pixels of patch p (row-major on the 2 x 2 grid) of frame t."""
    r, c = divmod(p, 2)
    return out[t, r * P : (r + 1) * P, c * P : (c + 1) * P]


def test_group_map_of_the_hand_built_map() -> None:
    cells = group_map(HAND, (2, 2, 2), cls_tokens=1)
    assert cells.tolist() == [[[0, 0], [-1, 1]], [[-1, 2], [2, 1]]]
    # renaming the final tokens does not change the numbering (raster order of the first patch)
    renamed = SourceMap(torch.tensor([9, 0, 0, 8, 7, 6, 5, 3, 3, 7]), (5, 5))
    assert torch.equal(group_map(renamed, (2, 2, 2)), cells)


def test_painted_patches_are_the_blend_unpainted_equal_the_input() -> None:
    frames = noise(2)
    out = draw_merge_groups(torch.from_numpy(frames), HAND, patch=P, outlines=False).numpy()
    colors = palette(3).numpy()
    for t, p, g in [(0, 0, 0), (0, 1, 0), (0, 3, 1), (1, 3, 1), (1, 1, 2), (1, 2, 2)]:
        assert (cell(out, t, p) == hand_blend(cell(frames, t, p), colors[g], 128)).all(), (t, p)
    for t, p in [(0, 2), (1, 0)]:  # singletons: untouched
        assert (cell(out, t, p) == cell(frames, t, p)).all()


def test_one_group_one_colour_across_frames() -> None:
    """On a uniform grey clip every pixel of a group has one value, in both frames for the ClipMe group."""
    frames = np.full((2, 8, 8, 3), 100, dtype=np.uint8)
    out = draw_merge_groups(frames, HAND, patch=P, alpha=0.75, outlines=False).numpy()
    colors = palette(3).numpy()
    expected = [hand_blend(np.full(3, 100, np.uint8), colors[g], 192) for g in range(3)]
    assert (cell(out, 0, 3) == expected[1]).all() and (cell(out, 1, 3) == expected[1]).all()
    assert (cell(out, 0, 0) == expected[0]).all() and (cell(out, 0, 1) == expected[0]).all()
    assert len({tuple(e) for e in expected}) == 3
    solid = draw_merge_groups(frames, HAND, patch=P, alpha=1.0, outlines=False).numpy()
    assert (cell(solid, 1, 2) == colors[2]).all()  # alpha 1: the palette colour itself


def test_outlines_between_groups_only() -> None:
    frames = noise(2, seed=3)
    out = draw_merge_groups(frames, HAND, patch=P).numpy()
    plain = draw_merge_groups(frames, HAND, patch=P, outlines=False).numpy()
    f0p0 = cell(out, 0, 0)
    # f0p0 (group 0): right neighbour f0p1 is group 0 (no line), bottom neighbour f0p2 is a singleton (line)
    assert (f0p0[-1] == EDGE).all()
    assert (f0p0[:-1] == cell(plain, 0, 0)[:-1]).all()
    # f0p1: bottom neighbour f0p3 is group 1 -> line on its last row; f0p3: top line and left line (singleton f0p2)
    assert (cell(out, 0, 1)[-1] == EDGE).all() and (cell(out, 0, 3)[0] == EDGE).all()
    assert (cell(out, 0, 3)[:, 0] == EDGE).all() and (cell(out, 0, 3)[1:, 1:] == cell(plain, 0, 3)[1:, 1:]).all()
    # singletons get no line even where they border a group
    assert (cell(out, 0, 2) == cell(frames, 0, 2)).all()


def test_cell_edges_by_hand() -> None:
    edges = cell_edges(torch.tensor([[[0, 1], [0, 0]]]), 3)[0].int()
    expected = torch.tensor(
        [
            [0, 0, 1, 1, 0, 0],
            [0, 0, 1, 1, 0, 0],
            [0, 0, 1, 1, 1, 1],
            [0, 0, 0, 1, 1, 1],
            [0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
        ]
    )
    assert torch.equal(edges, expected)


def test_video_vit_layout_with_tubelets() -> None:
    """One sequence per video, no CLS, tubelets of 2 frames: grid (2, 2, 2) on 4 frames of 8 x 8."""
    #              t0: p0 p1 p2 p3   t1: p0 p1 p2 p3
    index = torch.tensor([0, 0, 1, 2, 3, 4, 5, 2])  # token 0 = {t0p0, t0p1}; token 2 = {t0p3, t1p3}
    sources = SourceMap(index, (8,))
    frames = noise(4, seed=5)
    out = draw_merge_groups(frames, sources, patch=P, tubelet=2, cls_tokens=0, outlines=False).numpy()
    colors = palette(2).numpy()
    for t in range(4):  # group 1 covers patch 3 in all four frames, group 0 patches 0 and 1 of frames 0-1
        assert (cell(out, t, 3) == hand_blend(cell(frames, t, 3), colors[1], 128)).all()
    for t in (0, 1):
        assert (cell(out, t, 0) == hand_blend(cell(frames, t, 0), colors[0], 128)).all()
        assert (cell(out, t, 2) == cell(frames, t, 2)).all()
    for t in (2, 3):
        assert (cell(out, t, 0) == cell(frames, t, 0)).all()


def test_explicit_positions_and_second_video() -> None:
    """A ragged layout (e.g. after RLT) drawn from explicit positions; video 1 of a two-video map."""
    pos = torch.tensor([[0, 0, 0], [0, 1, 1], [NO_POSITION] * 3, [0, 0, 1], [0, 1, 0], [0, 1, 1]])
    sources = SourceMap(torch.tensor([0, 0, 1, 2, 2, 3]), (2, 4))  # video 0: 2 tokens, video 1: CLS + 3
    cells = group_map(sources, (1, 2, 2), positions=pos, video=1)
    assert cells.tolist() == [[[-1, 0], [0, -1]]]
    assert group_map(sources, (1, 2, 2), positions=pos, video=0).tolist() == [[[0, -1], [-1, 0]]]


def test_palette_is_distinct_and_stable() -> None:
    big = palette(5000)
    assert torch.unique(big, dim=0).shape[0] == 5000
    assert torch.equal(palette(7), big[:7])
    assert palette(1).tolist() == [[255, 0, 0]]
    assert blend(torch.tensor([10, 20, 30]), torch.tensor([250, 0, 100]), 64).tolist() == [70, 15, 48]


def test_errors_name_the_fix() -> None:
    with pytest.raises(TokenLayoutError, match="positions="):
        group_map(HAND, (2, 3, 3))
    with pytest.raises(ConfigError, match="video=2"):
        group_map(HAND, (2, 2, 2), video=2)
    with pytest.raises(TokenLayoutError, match="patch="):
        draw_merge_groups(noise(2), HAND, patch=3)
    with pytest.raises(ConfigError, match="TempMe"):
        draw_model_merges(vs.create_model("clip-tiny").eval(), noise(4, side=32))


@pytest.mark.parametrize("reducer", ["tempme", "tome"])
def test_end_to_end_tiny_clip(reducer: str) -> None:
    torch.manual_seed(0)
    merge = vs.TempMe(r=2, merge_layers=(1,), groups=(2,), rc=0.3, ri=0.1) if reducer == "tempme" else vs.ToMe(r=3)
    model = vs.create_model("clip-tiny", reduction=[merge], vision_layers=3).eval()
    frames = torch.from_numpy(noise(4, side=32, seed=7))
    out = draw_model_merges(model, frames, alpha=1.0, outlines=False)
    assert out.shape == (4, 32, 32, 3) and out.dtype == torch.uint8
    assert merge.trace_source is False and merge.sources is not None  # switched on for the forward only
    sources = merge.sources
    # groups counted independently: final tokens covering >= 2 original patches (CLS rows 0, 17, 34, 51 left out)
    patch_rows = torch.ones(sources.index.shape[0], dtype=torch.bool)
    patch_rows[::17] = False
    counts = torch.bincount(sources.index[patch_rows])
    groups = int((counts > 1).sum())
    cells = group_map(sources, (4, 4, 4))
    painted = cells.repeat_interleave(8, 1).repeat_interleave(8, 2) >= 0
    assert int(painted.sum()) == 64 * int(counts[counts > 1].sum())
    assert torch.unique(out[painted], dim=0).shape[0] == groups > 0
    assert torch.equal(out[~painted], frames[~painted])
    if reducer == "tempme":  # ClipMe joined frames: some group spans two frames and has one colour in both
        spans = [(cells == g).flatten(1).any(1).sum() for g in range(groups)]
        assert max(spans) >= 2


def test_after_layer_draws_the_groups_of_that_block() -> None:
    """ToMe r=3 per frame and layer: after block 0 every frame has 3 merges, so at most 3 groups of 2 patches
    per frame; after the last block (2) the final map; a block the forward never ran is a ConfigError."""
    torch.manual_seed(0)
    merge = vs.ToMe(r=3)
    model = vs.create_model("clip-tiny", reduction=[merge], vision_layers=3).eval()
    frames = torch.from_numpy(noise(4, side=32, seed=7))
    first = draw_model_merges(model, frames, alpha=1.0, outlines=False, after_layer=0)
    last = draw_model_merges(model, frames, alpha=1.0, outlines=False, after_layer=2)
    final = draw_model_merges(model, frames, alpha=1.0, outlines=False)
    assert torch.equal(last, final)
    unchanged_first = (first == frames).all(-1).flatten(1).sum(1)  # pixels per frame left unpainted
    unchanged_last = (last == frames).all(-1).flatten(1).sum(1)
    assert (unchanged_first >= (16 - 6) * 64).all()  # at most 3 merges x 2 patches painted per frame
    assert (unchanged_last < unchanged_first).all()
    with pytest.raises(ConfigError, match="after_layer=3"):
        draw_model_merges(model, frames, after_layer=3)
