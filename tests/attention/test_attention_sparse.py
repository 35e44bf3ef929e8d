"""The block-sparse hook: a pattern's attention equals a hand-masked softmax on every SDPA path."""

from __future__ import annotations

import math

import pytest
import torch

from vidslim.attention import BlockLocalPattern, MaskPattern, attend
from vidslim.errors import TokenLayoutError


def masked_reference(q, k, v, seqlens, masks, key_bias=None):
    """Per video: softmax(q k^T / sqrt(d) + bias, with -inf where masks[i] is False) v, in float64."""
    outs = []
    bias = key_bias.split(seqlens) if key_bias is not None else [None] * len(seqlens)
    for qs, ks, vs, m, bs in zip(q.split(seqlens), k.split(seqlens), v.split(seqlens), masks, bias, strict=True):
        qs, ks, vs = (t.double().transpose(0, 1) for t in (qs, ks, vs))
        logits = qs @ ks.transpose(-1, -2) / math.sqrt(qs.shape[-1])
        if bs is not None:
            logits = logits + bs.double()
        outs.append((logits.masked_fill(~m, float("-inf")).softmax(-1) @ vs).transpose(0, 1))
    return torch.cat(outs)


def hand_mask(n: int, seed: int = 0) -> torch.Tensor:
    """A random [n, n] mask with the diagonal kept, so every query sees at least itself."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(n, n, generator=gen) < 0.4) | torch.eye(n, dtype=torch.bool)


@pytest.mark.parametrize(
    ("seqlens", "backend"),
    [([9, 9], "auto"), ([5, 9, 3], "auto"), ([5, 9, 3], "padded"), ([2, 2, 9, 2], "auto")],
)
@pytest.mark.parametrize("with_bias", [False, True])
def test_mask_pattern_equals_hand_masked_softmax(seqlens: list[int], backend: str, with_bias: bool) -> None:
    gen = torch.Generator().manual_seed(1)
    total = sum(seqlens)
    q, k, v = (torch.randn(total, 2, 8, generator=gen) for _ in range(3))
    bias = torch.randn(total, generator=gen) if with_bias else None
    mask = hand_mask(9)
    out = attend(q, k, v, seqlens, key_bias=bias, pattern=MaskPattern(mask), backend=backend)
    expected = masked_reference(q, k, v, seqlens, [mask[:n, :n] for n in seqlens], bias)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)


def test_block_local_dense_mask_by_hand() -> None:
    # 1 global token, then blocks of 2: tokens 1-2, 3-4
    expected = torch.tensor(
        [
            [1, 1, 1, 1, 1],
            [1, 1, 1, 0, 0],
            [1, 1, 1, 0, 0],
            [1, 0, 0, 1, 1],
            [1, 0, 0, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(BlockLocalPattern(block_size=2, num_global=1).dense_mask(5), expected)


def test_block_local_pattern_through_attend() -> None:
    pattern = BlockLocalPattern(block_size=4, num_global=1)
    seqlens = [3, 13, 13]
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(29, 2, 8, generator=gen) for _ in range(3))
    out = attend(q, k, v, seqlens, pattern=pattern)
    expected = masked_reference(q, k, v, seqlens, [pattern.dense_mask(n) for n in seqlens])
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)


def test_padded_mask_hides_padding_and_keeps_padded_rows_finite() -> None:
    mask = BlockLocalPattern(block_size=2).padded_mask(torch.tensor([3, 1]), width=3)
    assert mask.shape == (2, 3, 3)
    assert mask[0].tolist() == [[True, True, False], [True, True, False], [False, False, True]]
    assert mask[1].tolist() == [[True, False, False]] * 3  # one real key; padded rows may see it


def test_pattern_gradients_flow() -> None:
    seqlens = [5, 9]
    mask = hand_mask(9, seed=4)
    q, k, v = (torch.randn(14, 2, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    out = attend(q, k, v, seqlens, pattern=MaskPattern(mask))
    got = torch.autograd.grad(out.sum(), (q, k, v))
    want = torch.autograd.grad(masked_reference(q, k, v, seqlens, [mask[:5, :5], mask]).sum(), (q, k, v))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


def test_bad_patterns_raise() -> None:
    with pytest.raises(TokenLayoutError, match="square"):
        MaskPattern(torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(TokenLayoutError, match="bool"):
        MaskPattern(torch.ones(3, 3))
    with pytest.raises(TokenLayoutError, match="longer than"):
        q = torch.zeros(5, 1, 2)
        attend(q, q, q, [5], pattern=MaskPattern(torch.ones(3, 3, dtype=torch.bool)))
    with pytest.raises(TokenLayoutError):
        BlockLocalPattern(block_size=0)
