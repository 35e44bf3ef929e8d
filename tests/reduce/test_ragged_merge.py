"""The ragged merge planner (`vidslim.reduce.ragged_merge`) and the layouts built ahead per forward: packed sequences
merge exactly as each would alone, as the step-by-step list reference does, in length groups cut by hand, and the
tables a reducer builds ahead serve every merge it then makes, with outputs equal to building each when it comes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reduce_helpers import narrow_clip
from test_matching import reference_matching

import vidslim as vs
import vidslim.reduce.tempme as tempme_module
from vidslim.reduce.ragged_merge import RaggedLayout, length_groups
from vidslim.reduce.tempme import TempMe
from vidslim.reduce.token_merge import LayoutCache, merge_steps, merge_tokens, packed_plan, sequence_merges
from vidslim.tokenize.rlt import RLT
from vidslim.tokens import NO_POSITION, Tokens


def ragged(lengths: tuple[int, ...], seed: int = 0, dim: int = 5) -> Tokens:
    g = torch.Generator().manual_seed(seed)
    total = sum(lengths)
    pos = torch.randint(0, 9, (total, 3), generator=g)
    pos[[sum(lengths[:i]) for i in range(len(lengths))]] = NO_POSITION
    size = torch.randint(1, 5, (total,), generator=g).float()
    return Tokens(torch.randn(total, dim, generator=g), lengths, pos, size)


def packed_merge(tokens: Tokens, metric: torch.Tensor, counts: list[int], protected: int):
    plan = packed_plan(tokens, metric, counts, protected)
    return plan.apply(tokens), plan.destinations(tokens.total)


@pytest.mark.parametrize("protected", [0, 1, 2, 3])
def test_packed_equals_each_sequence_alone_bit_for_bit(protected: int) -> None:
    # one long sequence next to short ones (two length groups), one too short to merge, one that merges nothing
    lengths = (121, 9 + protected, 14 + protected, protected + 1, 12 + protected, 7 + protected)
    counts = [9, 2, 5, 3, 0, 40]
    tokens = ragged(lengths, seed=protected)
    metric = torch.randn(tokens.total, 4, generator=torch.Generator().manual_seed(7))
    metric[tokens.offsets[1] + protected + 2] = metric[tokens.offsets[1] + protected + 4]  # an exact tie
    clamped = sequence_merges(counts, lengths, protected)
    layout = RaggedLayout.build(lengths, clamped, protected, torch.device("cpu"))
    assert len(layout.groups) >= 2  # the long sequence gets a group of its own size
    out, where = packed_merge(tokens, metric, counts, protected)
    start, out_start = 0, 0
    for n, m in zip(lengths, clamped, strict=True):
        part = Tokens(tokens.x[start : start + n], (n,), tokens.pos[start : start + n], tokens.size[start : start + n])
        alone, alone_where = packed_merge(part, metric[start : start + n], [m], protected)
        rows = slice(out_start, out_start + n - m)
        assert torch.equal(out.x[rows], alone.x) and torch.equal(out.size[rows], alone.size)
        assert torch.equal(out.pos[rows], alone.pos)
        assert torch.equal(where[start : start + n], alone_where + out_start)
        start, out_start = start + n, out_start + n - m
    assert out.seqlens == tuple(n - m for n, m in zip(lengths, clamped, strict=True))


@pytest.mark.parametrize("protected", [1, 2, 3])
def test_packed_matches_the_list_reference(protected: int) -> None:
    lengths = (49 + protected, 11 + protected, 20 + protected, 6 + protected)
    counts = [12, 3, 8, 1]
    metric = torch.randn(sum(lengths), 8, dtype=torch.float64, generator=torch.Generator().manual_seed(protected))
    x = torch.randn(sum(lengths), 3, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    out, _ = merge_tokens(Tokens(x.float(), lengths), metric, counts, protected)
    expected = torch.cat([
        reference_matching(m, xs, r, protected).float()
        for m, xs, r in zip(metric.split(list(lengths)), x.split(list(lengths)), counts, strict=True)
    ])
    torch.testing.assert_close(out.x, expected)


def test_length_groups_by_hand() -> None:
    widths = np.array([177, 26, 25, 23, 9, 6, 5])
    # one CLS: a row of w tokens scores ((w - 1) // 2) * (w - 1 - (w - 1) // 2) pairs; 177 -> 88 * 88, 26 -> 12 * 13
    assert length_groups(widths, 1, 0) == [(0, 1), (1, 4), (4, 5), (5, 7)]  # one group per power of two
    # padding 9 to 26 costs 156 - 16 = 140 pairs, 6 and 5 to 26: 2 * (156 - 6) = 300; 26.. to 177: 3 * (7744 - 156)
    assert length_groups(widths, 1, 4096) == [(0, 1), (1, 7)]
    assert length_groups(widths, 1, 1 << 30) == [(0, 7)]


def test_merge_steps_follow_merge_tokens() -> None:
    lengths, rounds = (40, 17, 9, 3), [6, [2, 5, 1, 0], 6, 6]
    tokens, seen = ragged(lengths), []
    for r in rounds:
        counts = sequence_merges(r, tokens.seqlens, 1)
        if any(counts):
            seen.append((tokens.seqlens, counts, 1))
        tokens, _ = merge_tokens(tokens, tokens.x, r, 1)
    assert merge_steps(lengths, rounds, 1) == seen
    # equal lengths and counts take the equal-length path: no ragged step
    assert merge_steps((10, 10), [2, 2], 1) == []


def test_a_layout_serves_once_and_only_its_own_merge() -> None:
    cache = LayoutCache()
    cache.prepare([((9, 5), [2, 1], 1)], torch.device("cpu"))
    assert cache.take((9, 5), [2, 2], 1) is None
    assert cache.take((9, 5), [2, 1], 1) is not None
    assert cache.take((9, 5), [2, 1], 1) is None


class Counting:
    """Counts what the reducers build during a forward, and whether any merge had to build its own layout."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, ahead: bool = True) -> None:
        self.misses = self.hits = self.joins = 0
        take, join = LayoutCache.take, tempme_module.join_tables

        def counted_take(cache: LayoutCache, *key: object) -> RaggedLayout | None:
            layout = take(cache, *key)  # type: ignore[arg-type]
            self.hits += layout is not None
            self.misses += layout is None
            return layout

        def counted_join(*args: object) -> object:
            self.joins += 1
            return join(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(LayoutCache, "take", counted_take)
        monkeypatch.setattr(tempme_module, "join_tables", counted_join)
        if not ahead:
            monkeypatch.setattr(LayoutCache, "prepare", lambda cache, steps, device: None)


def changing_video(seed: int = 0) -> torch.Tensor:
    """12 frames where a different random third of the 32 px patches changes from frame to frame (ragged RLT)."""
    g = torch.Generator().manual_seed(seed)
    frames = [torch.randn(3, 224, 224, generator=g)]
    for _ in range(11):
        change = (torch.rand(7, 7, generator=g) < 0.35).repeat_interleave(32, 0).repeat_interleave(32, 1)
        frames.append(torch.where(change, torch.randn(3, 224, 224, generator=g), frames[-1]))
    return torch.stack(frames)[None]


def test_tempme_builds_every_ragged_merge_and_join_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    video = changing_video()
    model = narrow_clip(32, [RLT(tau=0.1), TempMe.paper("clip-b32")])
    with torch.inference_mode():
        counting = Counting(monkeypatch)
        ahead = model.encode_video(video)
        assert counting.hits >= 10 and counting.misses == 0 and counting.joins == 3
        monkeypatch.undo()
        counting = Counting(monkeypatch, ahead=False)
        each = model.encode_video(video)
        assert counting.hits == 0 and counting.joins == 3
    assert torch.equal(ahead, each)


def test_tome_builds_every_ragged_merge_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = vs.create_model("videomae-tiny", reduction=[RLT(tau=0.5), vs.ToMe(r=3)]).eval()
    clips = torch.randn(3, 3, 4, 32, 32)
    clips[1, :, 2:] = clips[1, :, :1]  # a still second half: video 1 keeps fewer tubelets
    with torch.inference_mode():
        counting = Counting(monkeypatch)
        ahead = model(clips)
        assert counting.hits >= 2 and counting.misses == 0
        monkeypatch.undo()
        Counting(monkeypatch, ahead=False)
        each = model(clips)
    assert torch.equal(ahead, each)

