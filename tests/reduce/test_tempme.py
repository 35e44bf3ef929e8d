"""TempMe in the model: the per-layer token tables of spec §1.7/§1.7b, the invariants of §7.2, the degenerate config,
a cross-clip merge derived by hand, the temporal embeddings, source tracing through ClipMe, the CLS readout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from reduce_helpers import Probe, narrow_clip, video
from torch import nn

from vidslim.errors import ConfigError
from vidslim.reduce.tempme import TempMe, regroup_clips
from vidslim.tokens import NO_POSITION, Tokens
from vidslim.tokens.protocol import HookContext

B32_DEFAULT = [
    (12, 50, 48), (12, 48, 46), (12, 46, 44), (12, 44, 42), (12, 42, 40), (12, 40, 38),
    (12, 38, 36), (12, 36, 34), (6, 48, 44), (3, 62, 56), (1, 118, 107), (1, 107, 97),
]  # fmt: skip
B16_DEFAULT_TAIL = [(6, 254, 229), (3, 321, 289), (1, 607, 547), (1, 547, 493)]
B16_PAPER = [
    (12, 197, 187), (12, 187, 177), (12, 177, 167), (12, 167, 157), (12, 157, 147), (12, 147, 137),
    (12, 137, 127), (12, 127, 117), (6, 141, 113), (3, 136, 109), (1, 197, 158), (1, 158, 127),
]  # fmt: skip


def run_table(patch: int, tempme: TempMe, batch: int = 1) -> tuple[list[tuple[int, int, int]], Probe]:
    probe = Probe()
    model = narrow_clip(patch, [tempme, probe])
    model.visual.cls_readout = False  # run the last layer on every token, as the release does
    with torch.inference_mode():
        model.encode_video(video(batch))
    return probe.table(batch), probe


def test_b32_default_table_comes_out_of_the_model() -> None:
    table, _ = run_table(32, TempMe(), batch=2)
    assert table == B32_DEFAULT


def test_b16_default_and_paper_tables() -> None:
    table, _ = run_table(16, TempMe())
    assert [attn for _, attn, _ in table[:8]] == [197, 195, 193, 191, 189, 187, 185, 183]
    assert table[8:] == B16_DEFAULT_TAIL
    paper, _ = run_table(16, TempMe.paper("clip-b16"))
    assert paper == B16_PAPER
    assert run_table(32, TempMe.paper("clip-b32"))[0] == B32_DEFAULT


def test_variant_6_8_10_groups_2_3_2() -> None:
    table, _ = run_table(32, TempMe(r=2, merge_layers=(6, 8, 10), groups=(2, 3, 2), rc=0.3, ri=0.1))
    assert table[6:] == [(6, 54, 49), (6, 49, 45), (2, 95, 86), (2, 86, 78), (1, 110, 99), (1, 99, 90)]


def test_invariants_of_spec_7_2() -> None:
    batch = 2
    tempme = TempMe(trace_source=True)
    _, probe = run_table(32, tempme, batch)
    covered = {7: 50, 8: 100, 9: 200, 10: 600, 11: 600}  # original tokens per sequence (spec §1.11)
    for layer, tokens in enumerate(probe.outputs):
        s, n = tokens.batch_size, tokens.seqlens[0]
        cls = 12 * batch // s
        assert s * cls == batch * 12  # batch x cls_num = B x 12 at every depth
        size = tokens.size.view(s, n)
        assert size[:, :cls].eq(1).all()  # CLS tokens stay size 1 ...
        assert (tokens.pos.view(s, n, 3)[:, :cls] == NO_POSITION).all()  # ... and at the head
        assert (tokens.pos.view(s, n, 3)[:, cls:, 1] != NO_POSITION).all()
        assert size.sum(1).eq(covered.get(layer, 50)).all()
    # the CLS of frame t of video b ends at index t of video b's sequence
    final = probe.outputs[-1]
    first_cls = torch.arange(batch * 12) * 50  # packed input index of each frame's CLS
    assert tempme.sources is not None
    assert tempme.sources.index[first_cls].tolist() == [b * 97 + t for b in range(batch) for t in range(12)]
    assert torch.equal(tempme.sources.sizes(final.total).float(), final.size)  # sources agree with sizes


def test_degenerate_config_equals_plain_clip_mean_pooling() -> None:
    degenerate = TempMe(r=0, groups=(1, 1, 1), rc=0.0, ri=0.0)
    model = narrow_clip(32, [degenerate])
    frames = video(2)
    with torch.inference_mode():
        ours = model.encode_video(frames)
        model.set_reduction(None)
        dense = model.encode_video(frames)
        per_frame = torch.stack([F.normalize(model.encode_image(frames[:, t]), dim=-1) for t in range(12)], 1)
    assert torch.equal(ours, dense)  # the same kernels on the same shapes: bit for bit
    torch.testing.assert_close(ours, per_frame.mean(1), atol=1e-6, rtol=1e-5)  # frame by frame: up to rounding


def test_video_embedding_shape_and_norm() -> None:
    model = narrow_clip(32, [TempMe.paper("clip-b32")])
    with torch.inference_mode():
        emb = model.encode_video(video(2))
    assert emb.shape == (2, 32)
    assert (emb.norm(dim=-1) <= 1 + 1e-6).all() and (emb.norm(dim=-1) > 0.5).all()


def test_cls_readout_is_exactly_the_full_last_layer() -> None:
    frames = video(2)
    for reduction in ([], [TempMe.paper("clip-b32")]):
        model = narrow_clip(32, reduction)
        with torch.inference_mode():
            fast = model.encode_video(frames)
            model.visual.cls_readout = False
            full = model.encode_video(frames)
        torch.testing.assert_close(fast, full, atol=1e-6, rtol=1e-5)


def test_regroup_puts_all_cls_first() -> None:
    # 4 sequences [c, p, p] of values 10s + i; join k=2 with c=1
    t = (torch.arange(4)[:, None] * 10 + torch.arange(3)).float()[..., None]
    joined = regroup_clips(t, 2, 1)[..., 0]
    assert joined.tolist() == [[0, 10, 1, 2, 11, 12], [20, 30, 21, 22, 31, 32]]


def test_cross_clip_merge_by_hand() -> None:
    """Two frames [C, a, b] joined: [C0, C1, a0, b0, a1, b1]; with 2 CLS the patches alternate from full index 2,
    so A = {a0, a1} and B = {b0, b1}. a0 = (1, 0) is closest to b1 = (1, .1) (across clips), a1 = (.9, .1) too
    (within its clip): M0 = min(int(6 * 0.4), 2) = 2 both merge into b1. The temporal embedding (+e_t on every
    token of frame t) reaches the features but not the metric."""
    rows = [[5.0, 5.0], [1.0, 0.0], [0.0, 1.0], [-5.0, 5.0], [0.9, 0.1], [1.0, 0.1]]  # C0 a0 b0 C1 a1 b1
    x = torch.tensor(rows)
    tempme = TempMe(r=0, merge_layers=(0,), groups=(2,), rc=0.4, ri=0.0, num_frames=2)
    e = torch.tensor([[0.0, 0.0], [0.0, 3.0]])  # a large e_1 would change the matches if it reached the metric
    tempme.temporal_embeddings["0"] = nn.Parameter(e.view(1, 2, 1, 2))
    pos = torch.tensor([[-1, -1, -1], [0, 0, 0], [0, 0, 1], [-1, -1, -1], [1, 0, 0], [1, 0, 1]])
    tokens = Tokens(x, (3, 3), pos)
    ctx = HookContext(0, 1, 1, 2, 1, (2, 1, 2), nn.Identity(), input_sequences=2)
    out = tempme.before_attention(tokens, ctx.start(tokens, tempme))
    with_e = x + e.repeat_interleave(3, 0)
    expected = torch.stack([with_e[0], with_e[3], with_e[2], (with_e[1] + with_e[4] + with_e[5]) / 3])
    assert out.seqlens == (4,)
    torch.testing.assert_close(out.x, expected)
    assert out.size.tolist() == [1.0, 1.0, 1.0, 3.0]
    assert out.pos.tolist() == [[-1, -1, -1], [-1, -1, -1], [0, 0, 1], [1, 0, 1]]  # b1 keeps its slot


def test_temporal_embeddings_are_zero_init_trainable_and_used() -> None:
    tempme = TempMe.paper("clip-b32")
    model = narrow_clip(32, [tempme]).train()
    shapes = {name: tuple(p.shape) for name, p in tempme.temporal_embeddings.items()}
    assert shapes == {"8": (1, 12, 1, 64), "9": (1, 6, 1, 64), "10": (1, 3, 1, 64)}
    assert all(p.eq(0).all() and p.requires_grad for p in tempme.parameters())
    assert "reduction_modules.0.temporal_embeddings.8" in model.state_dict()
    model.encode_video(video(1)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in tempme.parameters())


def test_bf16_autocast_runs_and_stays_close() -> None:
    model = narrow_clip(32, [TempMe.paper("clip-b32")])
    frames = video(1)
    with torch.inference_mode():
        ref = model.encode_video(frames)
        with torch.autocast("cpu", torch.bfloat16):
            low = model.encode_video(frames)
    assert F.cosine_similarity(ref, low.float()).min() > 0.98


def test_bad_configs_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="paper settings"):
        TempMe.paper("clip-l14")
    with pytest.raises(ConfigError, match="merge fraction"):
        TempMe(rc=30)
    with pytest.raises(ConfigError, match="increasing"):
        TempMe(merge_layers=(9, 8, 10))
    with pytest.raises(ConfigError, match="do not divide 12 frames"):
        narrow_clip(32, [TempMe(groups=(2, 2, 2))])
    with pytest.raises(ConfigError, match=r"do not fit a model of 2 layers \(0 to 1\): pass merge_layers within them"):
        narrow_clip(32, [TempMe()], vision_layers=2)
    import vidslim as vs

    with pytest.raises(ConfigError, match=r"vs\.ToMe for the video ViT"):
        vs.create_model("videomae-tiny", reduction=[TempMe()])
    model = narrow_clip(32, [TempMe()])
    with pytest.raises(ConfigError, match="TempMe\\(num_frames=6"), torch.inference_mode():
        model.encode_video(video(1, frames=6))
