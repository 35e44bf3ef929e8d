"""SViTT reducers inside the models: zero reduction is the dense model, the pattern runs the same on every backend,
token orders, and composition with RLT (packed unequal lengths) and with CLIP's per-frame sequences."""

from __future__ import annotations

import pytest
import torch

import vidslim as vs
from vidslim.attention import AttentionPattern, use_backend
from vidslim.attention.curves import order_keys
from vidslim.attention.svitt import SparseAttention
from vidslim.bench import count_flops
from vidslim.reduce.svitt_prune import TokenPrune
from vidslim.tokens import NO_POSITION, Tokens
from vidslim.tokens.protocol import HookContext

KERNEL_WIRED = hasattr(AttentionPattern, "sparse_attend")  # attend() runs a pattern's own kernel


class Spy:
    """Records the tokens entering every block (after the reducers listed before it)."""

    def __init__(self) -> None:
        self.seen: dict[int, Tokens] = {}

    def before_attention(self, tokens: Tokens, ctx: HookContext) -> Tokens:
        self.seen[ctx.layer] = tokens
        return tokens


def pair(name: str, reduction: list[object], **kw: object) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    dense = vs.create_model(name, **kw).eval()
    reduced = vs.create_model(name, reduction=reduction, **kw).eval()
    reduced.load_state_dict(dense.state_dict())
    return dense, reduced


VIT = dict(depth=3, num_frames=8, image_size=64, tubelet_size=2)  # 4 x 4 x 4 = 64 tokens per video


@pytest.mark.parametrize(
    "reduction",
    [
        [SparseAttention(block=64)],  # every block local: one block holds the whole video
        [SparseAttention(block=16, local=1, random=3)],  # 4 blocks, all of them chosen
        [TokenPrune(layers=(0, 1), keep=1.0)],
        [SparseAttention(block=64, order="hilbert"), TokenPrune(layers=(1,), keep=1.0)],
    ],
)
def test_zero_reduction_equals_the_dense_video_vit(reduction: list[object]) -> None:
    dense, reduced = pair("videomae-tiny", reduction, **VIT)
    video = torch.randn(2, 3, 8, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(reduced(video), dense(video), atol=1e-6, rtol=1e-6)


def test_zero_reduction_equals_the_dense_clip() -> None:
    dense, reduced = pair("clip-tiny", [SparseAttention(block=16), TokenPrune(layers=(0,), keep=1.0)])
    video = torch.randn(2, 4, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(reduced.encode_video(video), dense.encode_video(video))


def test_sparse_model_is_the_same_on_the_kernel_and_on_mask_backends() -> None:
    sparse = SparseAttention(block=8, local=1, random=2)
    dense, reduced = pair("videomae-tiny", [sparse], **VIT)
    video = torch.randn(2, 3, 8, 64, 64)
    with torch.inference_mode():
        out = reduced(video)
        with use_backend("padded"):
            masked = reduced(video)
        assert not torch.allclose(out, dense(video), atol=1e-4)  # the pattern does change the output
    torch.testing.assert_close(out, masked, atol=1e-5, rtol=1e-5)
    densities = sparse.densities()
    assert densities == pytest.approx({0: 24 / 64, 1: 24 / 64, 2: 24 / 64})  # 3 of 8 blocks of 8


@pytest.mark.skipif(not KERNEL_WIRED, reason="attend() does not call AttentionPattern.sparse_attend yet")
def test_the_model_runs_the_block_sparse_kernel() -> None:
    _, reduced = pair("videomae-tiny", [SparseAttention(block=8, local=1, random=2)], **VIT)
    dense = vs.create_model("videomae-tiny", **VIT).eval()
    video = torch.randn(1, 3, 8, 64, 64)
    sparse_attn = count_flops(reduced, video).by_operator
    dense_attn = count_flops(dense, video).by_operator
    name = next(op for op in dense_attn if "attention" in op)
    assert sparse_attn[name] == pytest.approx(dense_attn[name] * 24 / 64)


@pytest.mark.parametrize("order", ["zcurve", "hilbert"])
def test_tokens_enter_attention_in_curve_order_with_cls_first(order: str) -> None:
    spy = Spy()
    _, reduced = pair("clip-tiny", [SparseAttention(block=4, order=order), spy], num_frames=2)
    with torch.inference_mode():
        reduced.encode_video(torch.randn(1, 2, 3, 32, 32))
    tokens = spy.seen[0]
    for pos in torch.split(tokens.pos, list(tokens.seqlens)):
        assert (pos[0] == NO_POSITION).all()
        keys = order_keys(pos[1:], (2, 4, 4), order)
        assert torch.equal(keys, torch.sort(keys).values)
        assert not torch.equal(pos[1:, 2], torch.arange(16) % 4)  # not raster any more


def test_composes_with_rlt_on_packed_unequal_lengths() -> None:
    spy = Spy()
    rlt, sparse, prune = vs.RLT(tau=0.1), SparseAttention(block=8, random=1, order="zcurve"), TokenPrune((0,), 0.5)
    _, reduced = pair("videomae-tiny", [rlt, sparse, prune, spy], **VIT)
    video = torch.randn(2, 3, 8, 64, 64)
    video[0, :, 1:] = video[0, :, :1]  # video 0 is a still image: RLT keeps only its first tubelet slot
    with torch.inference_mode():
        out = reduced(video)
    assert torch.isfinite(out).all()
    assert spy.seen[0].seqlens == (16, 64)  # RLT
    assert spy.seen[1].seqlens == (8, 32)  # TokenPrune: ceil(0.5 * N) per video
    assert set(sparse.densities()) == {0, 1, 2}


def test_clip_prunes_each_frame_sequence_and_keeps_its_cls() -> None:
    spy = Spy()
    _, reduced = pair("clip-tiny", [TokenPrune(layers=(0,), keep=0.3), spy])
    with torch.inference_mode():
        emb = reduced.encode_video(torch.randn(2, 4, 3, 32, 32))
    assert emb.shape == (2, 32)
    after = spy.seen[1]
    assert after.seqlens == (1 + 5,) * 8  # CLS + ceil(0.3 * 16) for each of 2 x 4 frames
    heads = after.pos[after.cu_seqlens[:-1].long()]
    assert (heads == NO_POSITION).all()
    assert int((after.pos == NO_POSITION).any(dim=1).sum()) == 8


def test_trains_through_edges_and_nodes_with_patterns_redrawn_every_step() -> None:
    sparse = SparseAttention(block=8, local=1, random=2, order="zcurve")
    _, model = pair("videomae-tiny", [sparse, TokenPrune(layers=(0,), keep=0.5)], **VIT)
    model.train()
    video = torch.randn(2, 3, 8, 64, 64)
    tables = []
    for _ in range(2):
        model.zero_grad()
        model(video).square().mean().backward()
        pattern = sparse.last_patterns[0][0]
        assert pattern is not None
        tables.append(pattern.table)
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert not torch.equal(tables[0], tables[1])
