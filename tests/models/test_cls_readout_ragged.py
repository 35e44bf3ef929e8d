"""The CLS-only last block on sequences of unequal lengths: exactly the full block's outputs at the CLS rows."""

from __future__ import annotations

import pytest
import torch

import vidslim as vs
from vidslim.attention.sparse import BlockLocalPattern
from vidslim.models.blocks import Attention, ClipBlock
from vidslim.tokens import Tokens


def cls_rows(seqlens: tuple[int, ...], c: int) -> torch.Tensor:
    """Packed indices of the first c tokens of every sequence."""
    starts = torch.tensor([sum(seqlens[:i]) for i in range(len(seqlens))])
    return (starts[:, None] + torch.arange(c)).reshape(-1)


@pytest.mark.parametrize(("seqlens", "c"), [((5, 1, 9, 3), 1), ((6, 9, 4, 2), 2), ((4, 4), 2)])
def test_cls_only_block_equals_the_full_block_on_a_ragged_batch(seqlens: tuple[int, ...], c: int) -> None:
    torch.manual_seed(0)
    block = ClipBlock(32, 4, 64).eval()
    total = sum(seqlens)
    tokens = Tokens(torch.randn(total, 32), seqlens, torch.randint(0, 5, (total, 3)), torch.rand(total) + 1)
    rows = cls_rows(seqlens, c)
    with torch.no_grad():
        full = block(tokens)
        cls = block(tokens, cls_readout=c * len(seqlens))
    assert cls.seqlens == (c,) * len(seqlens)
    torch.testing.assert_close(cls.x, full.x[rows], atol=1e-5, rtol=1e-5)
    assert torch.equal(cls.pos, tokens.pos[rows]) and torch.equal(cls.size, tokens.size[rows])
    # a sequence shorter than c cannot give c CLS rows: the full block runs
    assert block(tokens, cls_readout=(min(seqlens) + 1) * len(seqlens)).seqlens == seqlens


def test_cls_queries_with_a_key_bias_and_a_pattern_on_a_ragged_batch() -> None:
    torch.manual_seed(1)
    attn = ClipBlock(32, 4, 64).eval().attn
    seqlens, c = (7, 2, 11), 2
    x = torch.randn(sum(seqlens), 32)
    key_bias = torch.rand(sum(seqlens)).log()  # log sizes, as proportional attention adds
    for pattern in (None, BlockLocalPattern(block_size=3, num_global=2)):
        with torch.no_grad():
            full, _ = attn(x, seqlens, key_bias, pattern=pattern)
            part, _ = attn(x, seqlens, key_bias, pattern=pattern, queries=c)
        torch.testing.assert_close(part, full[cls_rows(seqlens, c)], atol=1e-5, rtol=1e-5)


def test_clip_with_rlt_reads_the_same_embeddings_with_or_without_cls_readout(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []
    packed = Attention._first_queries_packed

    def counted(self: Attention, x: torch.Tensor, seqlens: tuple[int, ...], *args: object) -> torch.Tensor:
        calls.append(tuple(seqlens))
        return packed(self, x, seqlens, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Attention, "_first_queries_packed", counted)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    picture = torch.randn(2, 1, 3, 32, 32, generator=g)
    video = picture.expand(2, 4, 3, 32, 32).clone()
    video[1, 2:, :, :16] = 1.5  # video 1 changes at frame 2: the two videos keep different token counts
    for reduction in ([vs.RLT(tau=0.1)], [vs.RLT(tau=0.1), vs.TempMe(r=2, merge_layers=(1,), groups=(2,), rc=0.3,
                                                                      ri=0.1, num_frames=4)]):
        model = vs.create_model("clip-tiny", reduction=reduction, vision_layers=3).eval()
        with torch.no_grad():
            fast = model.encode_frames(video)
            model.visual.cls_readout = False
            slow = model.encode_frames(video)
        torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    assert len(calls) == 2 and all(len(set(lengths)) > 1 for lengths in calls)  # both took the ragged CLS path
