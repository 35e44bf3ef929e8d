"""TempMe after per-frame RLT: sequences of unequal lengths (the rule in tempme's module docstring), by hand and
against a per-sequence reference built from the equal-length path."""

from __future__ import annotations

import torch
from reduce_helpers import narrow_clip

from vidslim.reduce.matching import max_merges
from vidslim.reduce.tempme import TempMe, regroup_clips, regroup_order, share_merges
from vidslim.reduce.token_merge import merge_tokens
from vidslim.tokenize.rlt import RLT
from vidslim.tokens import NO_POSITION, Tokens
from vidslim.tokens.protocol import HookContext


class Lengths:
    """Identity reducer, put last: the seqlens entering attention in every layer (any lengths)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, ...]] = []

    def before_attention(self, tokens: Tokens, ctx: HookContext) -> Tokens:
        self.rows.append(tokens.seqlens)
        return tokens


def static_video(batch: int = 1, frames: int = 12, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 1, 3, 224, 224, generator=g).expand(batch, frames, 3, 224, 224).clone()


def test_static_video_token_counts_by_hand() -> None:
    # B/32 paper settings (r 2, layers 8/9/10, groups 2/2/3, rc .3, ri .1). A static video keeps 50 tokens in frame 0
    # and the CLS alone in frames 1..11. Frame 0 is a full frame, so it merges as in dense TempMe up to layer 8:
    # 50 -> 34; the CLS-only frames have no patch to merge. Counts are the fractions of each sequence's own length:
    # layer 8 joins 34 + 1 = 35 tokens (2 CLS): M0 = int(35 * .3) = 10 -> 25 into attention, M1 = int(25 * .1) = 2
    # -> 23; the 5 other clips are 2 CLS (int(2 * .3) = 0). Layer 9: 23 + 2 = 25 (4 CLS), M0 = int(7.5) = 7 -> 18,
    # M1 = int(1.8) = 1 -> 17; the others 4 CLS (int(1.2) = 1, clamped to half of no patch: 0). Layer 10: 17 + 4 + 4
    # = 25 (12 CLS), M0 = min(int(7.5), 13 // 2) = 6 -> 19, M1 = int(1.9) = 1 -> 18. Layer 11 (CLS only): 18.
    # (The full-frame counts 20/4, 26/6, 50/11 of spec tempme §7.1, clamped to half the patches, left 13.)
    probe = Lengths()
    model = narrow_clip(32, [RLT(tau=0.1), TempMe.paper("clip-b32"), probe])
    with torch.no_grad():
        out = model.encode_video(static_video())
    expected = [(50 - 2 * i,) + (1,) * 11 for i in range(8)]
    expected += [(25,) + (2,) * 5, (18, 4, 4), (19,), (18,)]
    assert probe.rows == expected
    assert out.shape == (1, 32) and torch.isfinite(out).all()


def test_keep_everything_equals_tempme_alone() -> None:
    video = torch.randn(1, 12, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        alone = narrow_clip(32, [TempMe.paper("clip-b32")]).encode_video(video)
        both = narrow_clip(32, [RLT(tau=0.0), TempMe.paper("clip-b32")]).encode_video(video)  # noise: keeps all
    torch.testing.assert_close(both, alone, atol=1e-5, rtol=1e-5)


def test_a_video_gives_the_same_output_alone_or_batched() -> None:
    video = static_video(2)
    video[1, 5:, :, :64, :96] = 2.0  # video 1: a region changes at frame 5, so its frames differ from video 0's
    model = narrow_clip(32, [RLT(tau=0.1), TempMe.paper("clip-b32")])
    with torch.no_grad():
        batched = model.encode_video(video)
        alone = torch.cat([model.encode_video(video[i : i + 1]) for i in range(2)])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(batched[0], batched[1])


def _context(layer: int, frames: int, batch: int) -> HookContext:
    return HookContext(layer, 12, batch, frames, 1, (frames, 7, 7), torch.nn.Identity(), input_sequences=batch * frames)


def test_clipme_join_and_merge_match_a_per_clip_reference() -> None:
    # 2 videos of 4 frames (as if after ImgMe), frame lengths all different; layer 8 joins k=2
    lengths = (9, 1, 5, 12, 7, 7, 3, 10)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(sum(lengths), 16, generator=g)
    pos = torch.randint(0, 7, (sum(lengths), 3), generator=g)
    size = torch.randint(1, 4, (sum(lengths),), generator=g).float()
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    pos[starts] = NO_POSITION
    tokens = Tokens(x, lengths, pos, size)
    tempme = TempMe(r=2, merge_layers=(8,), groups=(2,), rc=0.3, ri=0.1, temporal_pos=False, num_frames=4)
    got = tempme.before_attention(tokens, _context(8, 4, 2).start(tokens, tempme))
    # reference: each joined clip alone, through the equal-length regroup and merge
    parts, sizes, positions = [], [], []

    def join(t: torch.Tensor, j: int) -> torch.Tensor:
        first = t[starts[j] : starts[j] + lengths[j]]
        second = t[starts[j + 1] : starts[j + 1] + lengths[j + 1]]
        return torch.cat((first[:1], second[:1], first[1:], second[1:]))

    for j in range(0, len(lengths), 2):
        clip = Tokens(join(x, j), (lengths[j] + lengths[j + 1],), join(pos, j), join(size, j))
        merged, _ = merge_tokens(clip, clip.x, min(int(clip.total * 0.3), max_merges(clip.total, 2)), 2)
        parts.append(merged.x)
        sizes.append(merged.size)
        positions.append(merged.pos)
    expected_lengths = tuple(p.shape[0] for p in parts)
    # joined 10, 17, 14, 13 tokens, 2 CLS each: int(n * 0.3) = 3, 5, 4, 3 merges (all under half the patches)
    assert got.seqlens == expected_lengths == (7, 12, 10, 10)
    torch.testing.assert_close(got.x, torch.cat(parts))
    torch.testing.assert_close(got.size, torch.cat(sizes))
    assert torch.equal(got.pos, torch.cat(positions))
    assert got.size.sum() == size.sum()  # sizes add up


def test_packed_regroup_equals_the_equal_length_regroup() -> None:
    x = torch.randn(6 * 5, 3)
    tokens = Tokens(x, (5,) * 6)
    order, seqlens = regroup_order(tokens, 3, 1)
    assert seqlens == (15, 15)
    torch.testing.assert_close(x[order], regroup_clips(x.view(6, 5, 3), 3, 1).reshape(-1, 3))


def test_imgme_on_unequal_frames_merges_in_proportion_to_their_patches() -> None:
    # B/32 layer 0: a full frame has 49 patches and merges r = 2. A frame of p patches merges round(2p / 49), halves
    # up: p = 49 -> 2, 0 -> 0, 12 -> 0 (0.49), 13 -> 1 (0.53), 37 -> 2 (1.51), 3 -> 0 (0.12)
    lengths = (50, 1, 13, 14, 38, 4)
    tokens = Tokens(torch.randn(sum(lengths), 8), lengths)
    tempme = TempMe.paper("clip-b32", num_frames=6, merge_layers=(), groups=())

    class Info:
        keys_mean = tokens.x

    out = tempme.after_attention(tokens, Info(), _context(0, 6, 1).start(tokens, tempme))  # type: ignore[arg-type]
    assert out.seqlens == (48, 1, 13, 13, 36, 4)
    # layer 7: the full frame enters with 50 - 2 * 7 = 36 tokens (35 patches) and still merges 2, so a frame of p
    # patches merges round(2p / 35): 17 -> 1 (0.97), 8 -> 0 (0.46), 9 -> 1 (0.51), 35 -> 2
    lengths = (18, 9, 10, 36, 18, 1)
    tokens = Tokens(torch.randn(sum(lengths), 8), lengths)
    Info.keys_mean = tokens.x
    out = tempme.after_attention(tokens, Info(), _context(7, 6, 1).start(tokens, tempme))  # type: ignore[arg-type]
    assert out.seqlens == (17, 9, 9, 34, 17, 1)


def test_share_merges_by_hand() -> None:
    # B/16: r = 10 of 196 patches. 16 patches: 160 / 196 = 0.82 -> 1; 4: 0.20 -> 0; 29: 1.48 -> 1; 30: 1.53 -> 2
    assert share_merges(10, 196, [196, 16, 4, 0, 29, 30]) == [10, 1, 0, 0, 1, 2]
    assert share_merges(1, 4, [2]) == [1] and share_merges(3, 4, [2]) == [2]  # halves round up
    assert share_merges(0, 196, [100]) == [0] and share_merges(5, 0, [3]) == [0]


def test_full_frames_in_a_ragged_batch_merge_as_tempme_alone() -> None:
    # a batch of two videos, one static (ragged frames) and one of noise (every frame full): the full one's output
    # is exactly TempMe alone's, its counts being the schedule's
    noise = torch.randn(1, 12, 3, 224, 224, generator=torch.Generator().manual_seed(9))
    video = torch.cat((static_video(1, seed=4), noise))
    with torch.no_grad():
        both = narrow_clip(32, [RLT(tau=0.1), TempMe.paper("clip-b32")]).encode_video(video)
        alone = narrow_clip(32, [TempMe.paper("clip-b32")]).encode_video(video[1:])
    torch.testing.assert_close(both[1:], alone, atol=1e-5, rtol=1e-5)
