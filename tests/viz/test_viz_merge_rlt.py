"""Merge groups drawn over a ragged layout (RLT before TempMe): dropped patches greyed, merged groups coloured.

Hand-built map: 2 frames of 8 x 8 pixels, 4 x 4 patches (a 2 x 2 grid, p = row · 2 + col), one CLS per frame.
Frame 1 dropped patches 0 and 3 (RLT), so the original tokens are [cls0, f0p0, f0p1, f0p2, f0p3, cls1, f1p1, f1p2].
Final tokens: 0 = cls0, 1 = cls1, 2 = {f0p0, f0p1}, 3 = {f0p3, f1p2} (across frames), 4 = f0p2, 5 = f1p1.
Groups in raster order of the first patch: token 2 -> group 0, token 3 -> group 1.
"""

from __future__ import annotations

import numpy as np
import torch

import vidslim as vs
from vidslim.reduce.sources import SourceMap
from vidslim.tokens import NO_POSITION
from vidslim.viz import draw_merge_groups, draw_model_merges, group_map, palette
from vidslim.viz.draw import grey_out
from vidslim.viz.merge import covered_map

P = 4
C = [NO_POSITION] * 3
POS0 = torch.tensor([C, [0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], C, [1, 0, 1], [1, 1, 0]])
RAGGED = SourceMap(torch.tensor([0, 2, 2, 4, 3, 1, 5, 3]), (5, 3), POS0, videos=1)


def cell(out: np.ndarray | torch.Tensor, t: int, p: int) -> np.ndarray:
    r, c = divmod(p, 2)
    return np.asarray(out[t, r * P : (r + 1) * P, c * P : (c + 1) * P])


def test_hand_built_ragged_map_greys_the_dropped_patches() -> None:
    assert group_map(RAGGED, (2, 2, 2)).tolist() == [[[0, 0], [-1, 1]], [[-1, -1], [1, -1]]]
    assert covered_map(RAGGED, (2, 2, 2)).tolist() == [[[True, True], [True, True]], [[False, True], [True, False]]]
    frames = torch.from_numpy(np.random.default_rng(3).integers(0, 256, size=(2, 8, 8, 3), dtype=np.uint8))
    out = draw_merge_groups(frames, RAGGED, patch=P, alpha=1.0, outlines=False)
    grey, colors = grey_out(frames), palette(2).numpy()
    for t, p in [(1, 0), (1, 3)]:  # dropped by RLT: grey
        assert (cell(out, t, p) == cell(grey, t, p)).all()
    for t, p, g in [(0, 0, 0), (0, 1, 0), (0, 3, 1), (1, 2, 1)]:  # merged: the group's colour (alpha 1)
        assert (cell(out, t, p) == colors[g]).all()
    for t, p in [(0, 2), (1, 1)]:  # kept, alone: the frame's pixels
        assert (cell(out, t, p) == cell(frames, t, p)).all()


def test_clip_with_rlt_and_tempme_draws_drops_and_merges() -> None:
    # 4 frames of 32 x 32 (a 4 x 4 grid of 8-pixel patches): the top-left 16 x 16 pixels never change, the rest is
    # new noise in every frame, so RLT drops patches (h, w) in {0, 1} x {0, 1} of frames 1..3 and keeps the rest
    rng = np.random.default_rng(11)
    frames = torch.from_numpy(rng.integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8))
    frames[1:, :16, :16] = frames[0, :16, :16]
    torch.manual_seed(0)
    tempme = vs.TempMe(r=2, merge_layers=(1,), groups=(2,), rc=0.3, ri=0.1)
    model = vs.create_model("clip-tiny", reduction=[vs.RLT(tau=0.1), tempme], vision_layers=3).eval()
    out = draw_model_merges(model, frames, alpha=1.0, outlines=False)
    assert out.shape == (4, 32, 32, 3) and out.dtype == torch.uint8
    sources = tempme.sources
    assert sources is not None and sources.pos0 is not None
    assert sources.seqlens0 == (17, 13, 13, 13)
    expected = torch.ones(4, 4, 4, dtype=torch.bool)
    expected[1:, :2, :2] = False
    assert torch.equal(covered_map(sources, (4, 4, 4)), expected)
    dropped = torch.zeros(4, 32, 32, dtype=torch.bool)
    dropped[1:, :16, :16] = True
    assert torch.equal(out[dropped], grey_out(frames)[dropped])
    # groups counted independently: final tokens covering >= 2 original patches
    patches = ~(sources.pos0 == NO_POSITION).any(-1)
    counts = torch.bincount(sources.index[patches])
    groups = int((counts > 1).sum())
    cells = group_map(sources, (4, 4, 4))
    painted = cells.repeat_interleave(8, 1).repeat_interleave(8, 2) >= 0
    assert groups > 0 and int(painted.sum()) == 64 * int(counts[counts > 1].sum())
    assert not (painted & dropped).any()
    colours = torch.unique(out[painted], dim=0)
    assert colours.shape[0] == groups
    assert {tuple(c) for c in colours.tolist()} == {tuple(c) for c in palette(groups).tolist()}
    alone = ~painted & ~dropped
    assert torch.equal(out[alone], frames[alone])


def test_tome_after_rlt_draws_too() -> None:
    """ToMe records where the original tokens sat, so a CLIP with [RLT, ToMe] draws like one with TempMe."""
    import vidslim as vs
    from vidslim.viz import draw_model_merges

    torch.manual_seed(0)
    model = vs.create_model("clip-tiny", reduction=[vs.RLT(tau=0.1), vs.ToMe(r=2)], vision_layers=2).eval()
    frames = torch.zeros(4, 32, 32, 3, dtype=torch.uint8)
    frames[:, :8, :8] = 200  # a static bright patch; frames 1-3 repeat frame 0 everywhere
    frames[2:, 16:24, 16:24] = 90  # a patch that changes at frame 2
    drawn = draw_model_merges(model, frames, alpha=1.0, outlines=False)
    assert drawn.shape == frames.shape
    # frame 1 repeats frame 0 entirely: RLT dropped all its patches, which are greyed (not the input any more)
    assert not torch.equal(drawn[1], frames[1])
