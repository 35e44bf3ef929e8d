"""Node pruning: exactly ceil(q·N) tokens kept, the highest-scored ones, CLS always, order kept; scores from the
CLS row or the mean query (checked against full attention matrices); scores follow tokens through a merge."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import vidslim as vs
from vidslim.errors import ConfigError
from vidslim.reduce.svitt_prune import TokenPrune, carry_scores, keep_count, mean_query_attention
from vidslim.tokens import NO_POSITION, Tokens
from vidslim.tokens.protocol import AttentionInfo, HookContext


def test_keep_count_is_ceil_without_float_surprises() -> None:
    n = torch.tensor([10, 196, 7, 1, 0, 3])
    assert keep_count(n, 0.7).tolist() == [7, 138, 5, 1, 0, 3]  # 0.7 * 10 = 7.000000000000001 in floats
    assert keep_count(n, 0.6).tolist() == [math.ceil(x * 0.6 - 1e-9) for x in n.tolist()]
    assert keep_count(n, 1.0).tolist() == n.tolist()


def test_prune_keeps_the_best_of_each_sequence_in_order_ties_to_the_earlier() -> None:
    scores = torch.tensor([0.1, 0.9, 0.5, 0.5, 0.3, 0.8, 0.2, 0.7, 0.6])
    tokens = Tokens(torch.arange(9, dtype=torch.float32)[:, None], (4, 5))
    # keep 0.5: sequence 0 keeps 2: 0.9 (row 1), then the tie 0.5 goes to the earlier row 2; sequence 1 keeps 3:
    # rows 5, 7, 8; and the same with -inf scores (a token another reducer left without a score): rows in order
    out = TokenPrune(layers=(0,), keep=0.5).prune(tokens, scores, cls_tokens=0)
    assert out.seqlens == (2, 3) and out.x[:, 0].tolist() == [1, 2, 5, 7, 8]
    out = TokenPrune(layers=(0,), keep=0.5).prune(tokens, torch.full((9,), float("-inf")), cls_tokens=0)
    assert out.seqlens == (2, 3) and out.x[:, 0].tolist() == [0, 1, 4, 5, 6]


def packed_with_cls() -> Tokens:
    """Two sequences: [CLS, 5 patches] and [CLS, 3 patches], with positions."""
    pos = torch.tensor([[NO_POSITION] * 3, [0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], [1, 0, 0]])
    pos2 = torch.tensor([[NO_POSITION] * 3, [1, 0, 1], [1, 1, 0], [1, 1, 1]])
    x = torch.arange(10, dtype=torch.float32)[:, None].repeat(1, 4)
    return Tokens(x, (6, 4), torch.cat((pos, pos2)), torch.arange(10, dtype=torch.float32) + 1)


def test_prune_keeps_exactly_ceil_q_n_highest_scored_and_cls() -> None:
    tokens = packed_with_cls()
    #                      CLS   patches of sequence 0      CLS   patches of sequence 1
    scores = torch.tensor([0.0, 0.3, 0.1, 0.4, 0.2, 0.5, 0.0, 0.1, 0.9, 0.2])
    out = TokenPrune(layers=(0,), keep=0.5).prune(tokens, scores)
    # ceil(0.5 * 5) = 3 of sequence 0 (rows 5, 3, 1), ceil(0.5 * 3) = 2 of sequence 1 (rows 8, 9), CLS kept
    assert out.seqlens == (4, 3)
    assert out.x[:, 0].tolist() == [0, 1, 3, 5, 6, 8, 9]
    assert out.size.tolist() == [1, 2, 4, 6, 7, 9, 10]
    assert (out.pos[[0, 4]] == NO_POSITION).all()


def full_attention(q: torch.Tensor, k: torch.Tensor, seqlens: list[int], scale: float) -> list[torch.Tensor]:
    """Per sequence: the full attention matrix [H, n, n] in float64."""
    out, start = [], 0
    for n in seqlens:
        qs, ks = (t[start:start + n].double().transpose(0, 1) for t in (q, k))
        out.append((qs @ ks.transpose(-1, -2) * scale).softmax(-1))
        start += n
    return out


def test_mean_query_attention_is_the_mean_query_row() -> None:
    gen = torch.Generator().manual_seed(0)
    seqlens = [5, 8, 3]
    q, k = torch.randn(16, 2, 4, generator=gen), torch.randn(16, 2, 4, generator=gen)
    got = mean_query_attention(q, k, seqlens, 0.5)
    start, expected = 0, []
    for n in seqlens:
        mean_q = q[start:start + n].double().mean(0)  # [H, d]
        logits = torch.einsum("hd,nhd->hn", mean_q, k[start:start + n].double()) * 0.5
        expected.append(logits.softmax(-1).mean(0))
        start += n
    torch.testing.assert_close(got.double(), torch.cat(expected), atol=1e-6, rtol=1e-6)


class Scores:
    """Records this layer's attention info and the tokens after pruning."""

    def __init__(self) -> None:
        self.info: dict[int, AttentionInfo] = {}
        self.entering: dict[int, Tokens] = {}

    def before_attention(self, tokens: Tokens, ctx: HookContext) -> Tokens:
        self.entering[ctx.layer] = tokens
        return tokens

    def after_attention(self, tokens: Tokens, info: AttentionInfo, ctx: HookContext) -> Tokens:
        self.info[ctx.layer] = info
        return tokens


@pytest.mark.parametrize("model", ["videomae-tiny", "clip-tiny"])
def test_model_prunes_to_the_tokens_the_attention_points_at(model: str) -> None:
    spy = Scores()
    torch.manual_seed(0)
    vit = dict(depth=2, num_frames=8, image_size=64)
    kw = vit if model.startswith("videomae") else {}
    reduced = vs.create_model(model, reduction=[spy, TokenPrune(layers=(0,), keep=0.4)], **kw).eval()
    video = torch.randn(2, 3, 8, 64, 64) if "videomae" in model else torch.randn(2, 2, 3, 32, 32)
    with torch.inference_mode():
        reduced(video) if "videomae" in model else reduced.encode_video(video)
    before, after, info = spy.entering[0], spy.entering[1], spy.info[0]
    matrices = full_attention(info.q, info.k, list(info.seqlens), info.scale)
    start, expected = 0, []
    for n, attn in zip(before.seqlens, matrices, strict=True):
        if "clip" in model:  # CLS attention: row 0 averaged over heads; CLS kept
            score = attn[:, 0].mean(0)[1:]
            kept = torch.sort(torch.topk(score, math.ceil(0.4 * (n - 1))).indices + 1).values
            kept = torch.cat((torch.zeros(1, dtype=torch.long), kept))
        else:  # no CLS: the mean query's row; softmax is not linear, so it differs from the column mean
            mean_q = info.q[start:start + n].double().mean(0)
            logits = torch.einsum("hd,nhd->hn", mean_q, info.k[start:start + n].double()) * info.scale
            kept = torch.sort(torch.topk(logits.softmax(-1).mean(0), math.ceil(0.4 * n)).indices).values
        expected.append(kept + start)
        start += n
    expected_index = torch.cat(expected)
    assert after.seqlens == tuple(len(e) for e in expected)
    assert torch.equal(after.pos, before.pos[expected_index])


def test_scores_follow_tokens_through_a_merge_in_the_same_layer() -> None:
    class MergeLastTwo:
        """A stand-in for ToMe/TempMe: merges the last two tokens of each sequence in after_attention."""

        def after_attention(self, tokens: Tokens, info: AttentionInfo, ctx: HookContext) -> Tokens:
            parts = [(x[:-1], p[:-1]) for x, p in zip(tokens.split(), torch.split(tokens.pos, list(tokens.seqlens)),
                                                        strict=True)]
            return Tokens.from_list([x for x, _ in parts], pos=[p for _, p in parts])

    spy = Scores()
    torch.manual_seed(0)
    prune = TokenPrune(layers=(0,), keep=0.5)
    reduced = vs.create_model("videomae-tiny", reduction=[prune, MergeLastTwo(), spy], depth=2, num_frames=8,
                              image_size=64).eval()
    with torch.inference_mode():
        reduced(torch.randn(2, 3, 8, 64, 64))
    assert spy.entering[1].seqlens == (32, 32)  # ceil(0.5 * 63)


def test_carry_scores_by_position() -> None:
    before = packed_with_cls()
    scores = torch.arange(10, dtype=torch.float32)
    expected = [float("inf"), 1, 3, 4, 5, float("inf"), 7, 8, 9]  # patch (0, 0, 1) was merged away; CLS: +inf
    keep = torch.tensor([0, 1, 3, 4, 5, 6, 7, 8, 9])
    # two videos, one sequence each
    after = Tokens(before.x[keep], (5, 4), before.pos[keep])
    assert carry_scores(scores, before, after, batch_size=2, grid=(2, 2, 2)).tolist() == expected
    # one video whose two sequences (frames) were joined into one, as TempMe's ClipMe does
    joined = Tokens(before.x[keep], (9,), before.pos[keep])
    assert carry_scores(scores, before, joined, batch_size=1, grid=(2, 2, 2)).tolist() == expected


def test_errors() -> None:
    with pytest.raises(ConfigError, match="keep"):
        TokenPrune(keep=0.0)
    with pytest.raises(ConfigError, match="score"):
        TokenPrune(score="max")


class HostReads(TorchDispatchMode):
    """Records the ops that read device values back to the host (a device sync): item, nonzero, bool masks,
    repeat_interleave without its output size."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        name = func.overloadpacket.__name__
        bool_index = name.startswith("index") and any(
            isinstance(t, torch.Tensor) and t.dtype == torch.bool for t in tree_leaves((args, kwargs))
        )
        unsized = name == "repeat_interleave" and (kwargs or {}).get("output_size") is None
        if name in ("_local_scalar_dense", "nonzero", "masked_select") or bool_index or unsized:
            self.ops.append(name)
        return func(*args, **(kwargs or {}))


def test_pruning_packed_sequences_reads_nothing_back_from_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scores from the CLS row, a merge in between (scores carried by position) and the prune: no device sync."""
    tokens = packed_with_cls()
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(10, 2, 4, generator=gen), torch.randn(10, 2, 4, generator=gen)
    prune = TokenPrune(layers=(0,), keep=0.5)
    ctx = HookContext(layer=0, num_layers=1, batch_size=2, num_frames=2, cls_tokens=1, grid=(2, 2, 2), model=None)
    ctx.start(tokens, prune)
    want = prune.prune(tokens, AttentionInfo(q, k, tokens.seqlens, 0.5, None).cls_attention, cls_tokens=1)
    moved = tokens.replace(pos=tokens.pos.clone())  # another reducer's output: the scores follow by position
    reads = HostReads()
    monkeypatch.setattr(torch.Tensor, "tolist", lambda t: reads.ops.append("tolist"))
    with reads:
        prune.after_attention(tokens, AttentionInfo(q, k, tokens.seqlens, 0.5, None), ctx)
        out = prune.after_mlp(moved, ctx)
    monkeypatch.undo()
    assert reads.ops == []
    assert out.seqlens == want.seqlens and torch.equal(out.x, want.x) and torch.equal(out.pos, want.pos)
