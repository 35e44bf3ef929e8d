"""The per-layer report: tokens and FLOPs of every block as it ran, derived by hand for a tiny video ViT with ToMe;
the method registry."""

from __future__ import annotations

import pytest
import torch

import vidslim as vs
from vidslim.attention.svitt import SparseAttention
from vidslim.bench.report import layer_report
from vidslim.bench.suite import build_method as build_reduction
from vidslim.errors import ConfigError
from vidslim.reduce.registry import register_reducer, summaries, unregister_reducer
from vidslim.reduce.svitt_prune import TokenPrune
from vidslim.reduce.tempme import TempMe
from vidslim.reduce.tome import ToMe
from vidslim.tokenize.rlt import RLT, RandomMask


def block_flops(n: int, dim: int = 64, mlp: int = 256, n_mlp: int | None = None, match: int = 0) -> int:
    """Multiply-adds of one block: qkv, QK^T + AV, out proj, the matching scores (A x B x head_dim), the MLP."""
    n_mlp = n if n_mlp is None else n_mlp
    return n * dim * 3 * dim + 2 * n * n * dim + n * dim * dim + match + 2 * n_mlp * dim * mlp


def test_video_vit_with_tome_by_hand() -> None:
    torch.manual_seed(0)
    # videomae-tiny: 4 x 32 x 32 video, tubelets 2 x 16 x 16 -> 8 tokens, width 64, 2 heads of 32, MLP 256
    model = vs.create_model("videomae-tiny", reduction=[ToMe(r=2)]).eval()
    clips = torch.randn(2, 3, 4, 32, 32)
    report = layer_report(model, clips, videos=2)
    rows = [(r.layer, r.sequences, r.tokens_attn, r.tokens_out) for r in report.rows]
    assert rows == [(0, 1, 8, 6), (1, 1, 6, 4)]
    # layer 0: 8 tokens, A = B = 4 tokens scored on 32-dim mean keys, MLP on 6; layer 1: 6 tokens, 3 x 3, MLP on 4
    first = block_flops(8, n_mlp=6, match=4 * 4 * 32)
    second = block_flops(6, n_mlp=4, match=3 * 3 * 32)
    assert [r.gflops * 1e9 for r in report.rows] == [pytest.approx(first), pytest.approx(second)]
    stem, head = 8 * 64 * (3 * 2 * 16 * 16), 64 * 10
    assert report.gflops_per_video * 1e9 == pytest.approx(stem + first + second + head)
    assert all(not b._forward_hooks and not b.attn._forward_pre_hooks for b in model.blocks)  # hooks removed
    as_dict = report.to_dict()
    assert as_dict["layers"][0] == {
        "layer": 0,
        "sequences": 1,
        "tokens_attn": 8,
        "tokens_out": 6,
        "gflops": pytest.approx(first / 1e9),
        "density": 1.0,
    }
    assert "total" in report.table()


def test_clip_readout_row_and_bound_methods() -> None:
    torch.manual_seed(0)
    model = vs.create_model("clip-tiny").eval()  # 32 px, 8 px patches: 17 tokens per frame, 2 layers
    report = layer_report(model.encode_video, torch.randn(1, 4, 3, 32, 32))
    # the last block attends over all 17 keys of each frame but outputs only its CLS token
    assert [(r.sequences, r.tokens_attn, r.tokens_out) for r in report.rows] == [(4, 68, 68), (4, 68, 4)]


def test_method_registry() -> None:
    assert {"dense", "tome", "tempme"} <= set(summaries())
    assert build_reduction("dense", "clip-b32") == []
    (tome,) = build_reduction("tome", "clip-b16")
    assert isinstance(tome, ToMe) and tome.r == 10
    assert build_reduction("tome", "clip-b32", r=3)[0].r == 3
    (tempme,) = build_reduction("tempme", "clip-b16")
    assert isinstance(tempme, TempMe) and (tempme.r, tempme.rc, tempme.ri) == (10, 0.4, 0.2)
    combined = build_reduction("tome+tome", "clip-b32")
    assert len(combined) == 2
    with pytest.raises(ConfigError, match="did you mean tome"):
        build_reduction("tomee", "clip-b32")
    class Marker:
        pass

    register_reducer("noop_test", Marker)
    try:
        assert [type(r) for r in build_reduction("noop_test+dense", "x")] == [Marker]
    finally:
        unregister_reducer("noop_test")
    with pytest.raises(ConfigError, match="letters, digits and underscores"):
        register_reducer("a+b", Marker)


def test_density_column_by_hand() -> None:
    torch.manual_seed(0)
    # 8 frames of 32 x 32, tubelet 2: 4 x 2 x 2 = 16 tokens, no CLS; blocks of 2 -> 8 blocks, each query sees its
    # own block and 1 random one: 4 of 16 keys, density 1/4. Layer 1 is left dense: density 1.
    sparse = SparseAttention(block=2, local=1, random=1, layers=(0,))
    model = vs.create_model("videomae-tiny", num_frames=8, reduction=[sparse]).eval()
    report = layer_report(model, torch.randn(2, 3, 8, 32, 32), videos=2)
    assert [r.density for r in report.rows] == [0.25, 1.0]
    assert [row["density"] for row in report.to_dict()["layers"]] == [0.25, 1.0]
    assert report.table().splitlines()[0].split()[-1] == "density"
    assert report.table().splitlines()[1].split()[-1] == "0.250"


def test_new_methods_defaults_options_and_order() -> None:
    (rlt,) = build_reduction("rlt", "videomae-b16")
    assert isinstance(rlt, RLT) and rlt.tau == 0.1
    (rnd,) = build_reduction("random", "videomae-b16")
    assert isinstance(rnd, RandomMask) and rnd.keep == 0.5
    assert build_reduction("random", "videomae-b16", keep=0.3)[0].keep == 0.3
    (edges,) = build_reduction("svitt", "videomae-b16")
    assert isinstance(edges, SparseAttention) and (edges.block, edges.local, edges.random, edges.global_cls) == (
        56,
        1,
        3,
        True,
    )
    (prune,) = build_reduction("tokenprune", "clip-b16")
    assert isinstance(prune, TokenPrune) and (tuple(prune.layers), prune.keep) == ((3, 6, 9), 0.7)
    # SparseAttention always last, tokenizers first; "method.key" scopes an option to one method
    combined = build_reduction("svitt+tokenprune+rlt", "videomae-b16", keep=0.6, **{"svitt.block": 8})
    assert [type(r) for r in combined] == [RLT, TokenPrune, SparseAttention]
    assert combined[1].keep == 0.6 and combined[2].block == 8
    assert [type(r) for r in build_reduction("svitt+tempme", "clip-b32")] == [TempMe, SparseAttention]


@pytest.mark.parametrize(
    ("method", "model", "message"),
    [
        ("random+tempme", "clip-b32", "'random' acts on the video ViT"),
        ("rlt+tempme", "videomae-b16", "'tempme' acts on CLIP"),
        ("random", "clip-tiny", "pick a method that fits 'clip-tiny': dense, rlt, svitt, tempme, tokenprune, tome"),
        ("rlt+random", "videomae-b16", "random_keep"),
    ],
)
def test_methods_that_do_not_fit_the_model_are_a_clear_error(method: str, model: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_reduction(method, model)


@pytest.mark.parametrize(
    ("method", "model"),
    [
        ("rlt+tokenprune", "videomae-tiny"),
        ("rlt+svitt", "videomae-tiny"),
        ("tokenprune+svitt", "videomae-tiny"),
        ("tome+svitt", "videomae-tiny"),
        ("tome+svitt", "clip-tiny"),
        ("tokenprune+svitt", "clip-tiny"),
    ],
)
def test_combinations_run_and_shrink(method: str, model: str) -> None:
    torch.manual_seed(0)
    options = {"block": 2, "random": 1, "tokenprune.layers": [0], "tau": 0.0, "r": 2}  # noise at tau 0: RLT keeps all
    net = vs.create_model(model, reduction=build_reduction(method, model, strict=False, **options)).eval()
    if net.family == "clip":
        report = layer_report(net.encode_video, torch.randn(1, 4, 3, 32, 32))
    else:
        report = layer_report(net, torch.randn(1, 3, 4, 32, 32))
    dense = vs.create_model(model).eval()
    tokens = 4 * 17 if net.family == "clip" else 8
    assert report.rows[0].tokens_attn == tokens and isinstance(dense, type(net))
    shrinks = "tome" in method or "tokenprune" in method
    assert (report.rows[0].tokens_out < tokens) == shrinks  # pruned or merged in layer 0
    # blocks of 2, own + 1 random: 4 of 8 keys per query (video ViT), 1 CLS + 2 x 2 of 17 (CLIP, per frame)
    expected = (0.5 if net.family != "clip" else (17 + 16 * 5) / 17**2) if "svitt" in method else 1.0
    assert report.rows[0].density == pytest.approx(expected)
