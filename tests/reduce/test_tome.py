"""ToMe as a reducer: schedules, CLIP and the video ViT, packed unequal lengths, proportional attention, sources;
and the packed merge against the equal-length one and against a case worked by hand."""

from __future__ import annotations

import pytest
import torch
from reduce_helpers import Probe, narrow_clip, video

import vidslim as vs
from vidslim.errors import ConfigError
from vidslim.reduce.matching import bipartite_soft_matching
from vidslim.reduce.token_merge import _merge_packed, merge_tokens
from vidslim.reduce.tome import ToMe, tome_schedule
from vidslim.tokens import Tokens
from vidslim.tokens.protocol import HookContext


def test_schedules() -> None:
    assert tome_schedule(4, 8) == [8, 8, 8, 8]
    # decreasing: int(1.5 r) = 12 down to 2r - 12 = 4 in equal steps; increasing is the mirror
    assert tome_schedule(5, 8, "decreasing") == [12, 10, 8, 6, 4]
    assert tome_schedule(5, 8, "increasing") == [4, 6, 8, 10, 12]
    assert ToMe(schedule=[3, 1]).layer_r(4) == [3, 1, 0, 0]
    with pytest.raises(ConfigError, match="either r"):
        ToMe(r=2, schedule=[1])
    with pytest.raises(ConfigError, match="needs r"):
        ToMe()
    with pytest.raises(ConfigError, match="unknown"):
        ToMe(r=2, schedule="sideways")
    with pytest.raises(ConfigError, match="entries for a model of 2 layers"):
        ToMe(schedule=[1, 1, 1]).layer_r(2)


def test_clip_tokens_drop_by_r_per_frame_and_sizes_add_up() -> None:
    probe = Probe()
    model = narrow_clip(32, [ToMe(r=4), probe])
    model.visual.cls_readout = False
    with torch.inference_mode():
        model.encode_video(video(2, frames=3))
    # 4 fewer per layer until layer 11, where 6 tokens (CLS + 5 patches) allow only 2 merges
    assert probe.table(2) == [(3, 50 - 4 * i, 46 - 4 * i) for i in range(11)] + [(3, 6, 4)]
    size = probe.outputs[-1].size.view(6, 4)
    assert size[:, 0].eq(1).all() and size.sum(1).eq(50).all()


def test_r_zero_is_exactly_dense() -> None:
    dense = narrow_clip(32)
    tome = narrow_clip(32, [ToMe(r=0)])
    frames = video(1, frames=2)
    with torch.inference_mode():
        assert torch.equal(tome.encode_video(frames), dense.encode_video(frames))


class Uneven:
    """Drop the last tokens of every video so that video i keeps keep[i] tokens (an RLT stand-in)."""

    def __init__(self, keep: tuple[int, ...]) -> None:
        self.keep = keep

    def before_attention(self, tokens: Tokens, ctx: HookContext) -> Tokens:
        if ctx.layer:
            return tokens
        parts = [x[:k] for x, k in zip(tokens.split(), self.keep, strict=True)]
        pos = [p[:k] for p, k in zip(torch.split(tokens.pos, list(tokens.seqlens)), self.keep, strict=True)]
        return Tokens.from_list(parts, pos=pos)


def test_video_vit_unequal_lengths_equal_each_video_alone() -> None:
    torch.manual_seed(0)
    model = vs.create_model("videomae-tiny", reduction=[Uneven((30, 13, 22)), ToMe(r=5)]).eval()
    clips = torch.randn(3, 3, 4, 32, 32)
    with torch.inference_mode():
        together = model(clips)
        alone = []
        for i, keep in enumerate((30, 13, 22)):
            model.set_reduction([Uneven((keep,)), ToMe(r=5)])
            alone.append(model(clips[i : i + 1]))
    torch.testing.assert_close(together, torch.cat(alone), atol=1e-5, rtol=1e-5)


def test_packed_merge_by_hand() -> None:
    """Two sequences, no CLS. Sequence 0 = [t0..t4]: A = {t0, t2, t4}, B = {t1, t3}; t2 = t3 exactly, so t2 merges
    into t3 (r = 1). Sequence 1 = [u0, u1] merges u0 into u1. Unmerged A stay in descending score order (ToMe
    without a class token): t0 scores 0.6 (with t1), t4 scores 0.96 (with t1), so t4 comes before t0."""
    metric = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.0, 1.0], [0.8, 0.6], [1.0, 0.0], [1.0, 1.0]])
    x = torch.arange(7.0)[:, None]
    tokens = Tokens(x, (5, 2), size=torch.tensor([1.0, 1.0, 1.0, 3.0, 1.0, 1.0, 1.0]))
    out, where = merge_tokens(tokens, metric, r=1, protected=0, want_destinations=True)
    assert out.seqlens == (4, 1)
    # [t4, t0 | t1, (t2 + 3 t3) / 4]  and  [(u0 + u1) / 2]
    assert out.x.flatten().tolist() == [4.0, 0.0, 1.0, (2.0 + 3 * 3.0) / 4, 5.5]
    assert out.size.tolist() == [1.0, 1.0, 1.0, 4.0, 2.0]
    assert where.tolist() == [1, 2, 3, 3, 0, 4, 4]


@pytest.mark.parametrize("protected", [0, 1, 2, 3])
def test_packed_path_equals_the_equal_length_path(protected: int) -> None:
    torch.manual_seed(protected)
    x, metric = torch.randn(4, 17, 5), torch.randn(4 * 17, 6)
    tokens = Tokens.from_dense(x, pos=torch.randint(0, 9, (4, 17, 3)), size=torch.rand(4, 17) + 0.5)
    dense, d_where = merge_tokens(tokens, metric, 6, protected, want_destinations=True)
    packed, p_where = _merge_packed(tokens, metric, 6, protected, want_destinations=True)
    assert dense.seqlens == packed.seqlens
    torch.testing.assert_close(dense.x, packed.x)
    torch.testing.assert_close(dense.size, packed.size)
    assert torch.equal(dense.pos, packed.pos) and torch.equal(d_where, p_where)


def test_sources_follow_merges() -> None:
    tome = ToMe(r=6, trace_source=True)
    model = narrow_clip(32, [tome])
    model.visual.cls_readout = False
    probe = Probe()
    model.set_reduction([tome, probe])
    with torch.inference_mode():
        model.encode_video(video(1, frames=2))
    final = probe.outputs[-1]
    assert tome.sources is not None and tome.sources.index.shape == (100,)
    assert torch.equal(tome.sources.sizes(final.total).float(), final.size)
    matrix = tome.sources.matrix(final.total)
    assert matrix.sum(0).eq(1).all()  # every original token is covered exactly once
    assert matrix[0, 0] and matrix[0].sum() == 1  # the CLS of frame 0 covers only itself


def test_proportional_attention_flag_reaches_the_model() -> None:
    assert narrow_clip(32, [ToMe(r=2)]).hooks.proportional_attention
    assert not narrow_clip(32, [ToMe(r=2, proportional_attention=False)]).hooks.proportional_attention


def test_token_merge_equals_the_reference_weighted_average_and_survives_fp16() -> None:
    torch.manual_seed(3)
    x, metric, size = torch.randn(3, 20, 4), torch.randn(3, 20, 8), torch.rand(3, 20) * 5 + 1
    merge = bipartite_soft_matching(metric, 6, protected=2)
    expected, expected_size = merge.weighted_average(x, size[..., None])
    tokens = Tokens.from_dense(x, size=size)
    out, _ = merge_tokens(tokens, metric.reshape(60, 8), 6, protected=2)
    torch.testing.assert_close(out.x, expected.reshape(-1, 4))
    torch.testing.assert_close(out.size, expected_size.reshape(-1))
    # fp16 features with sizes in the thousands: size * x would overflow, the fractions used here do not
    big = Tokens.from_dense(torch.full((1, 7, 2), 100.0, dtype=torch.float16), size=torch.full((1, 7), 3000.0))
    half, _ = merge_tokens(big, torch.randn(7, 4), 3, protected=1)
    assert half.x.dtype == torch.float16 and half.size.sum() == 21000
    torch.testing.assert_close(half.x.float(), torch.full((4, 2), 100.0), atol=0.1, rtol=0)  # fp16 rounding


@torch.no_grad()
def test_an_r_larger_than_any_sequence_is_refused_naming_cls_only_where_there_is_one() -> None:
    """videomae-tiny has no CLS token and CLIP has one per frame: the refusal counts only what can merge, and says
    "besides CLS" only where a CLS is protected."""
    videomae = vs.create_model("videomae-tiny", reduction=[ToMe(r=1000)]).eval()
    with pytest.raises(ConfigError, match=r"holds \d+ tokens, fewer than the r") as no_cls:
        videomae(torch.randn(1, 3, 8, 32, 32))
    assert "CLS" not in str(no_cls.value)
    clip = narrow_clip(reduction=[ToMe(r=1000)])
    with pytest.raises(ConfigError, match=r"holds 49 tokens besides CLS, fewer than the r"):
        clip.encode_video(video())
