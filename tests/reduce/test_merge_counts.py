"""`merge_tokens` with one merge count per sequence: every sequence merges as it would alone with its own count."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from vidslim.errors import TokenLayoutError
from vidslim.reduce.token_merge import merge_tokens, sequence_merges
from vidslim.tokens import NO_POSITION, Tokens


def ragged(lengths: tuple[int, ...], seed: int = 0) -> Tokens:
    g = torch.Generator().manual_seed(seed)
    total = sum(lengths)
    pos = torch.randint(0, 9, (total, 3), generator=g)
    pos[[sum(lengths[:i]) for i in range(len(lengths))]] = NO_POSITION
    return Tokens(torch.randn(total, 6, generator=g), lengths, pos, torch.randint(1, 4, (total,), generator=g).float())


def merged_alone(tokens: Tokens, counts: list[int]) -> tuple[Tensor, Tensor, Tensor, tuple[int, ...]]:
    """Each sequence through merge_tokens alone (the equal-length path), concatenated."""
    xs, sizes, positions, lengths = [], [], [], []
    for i, (start, n) in enumerate(zip(tokens.offsets[:-1], tokens.seqlens, strict=True)):
        part = Tokens(tokens.x[start : start + n], (n,), tokens.pos[start : start + n], tokens.size[start : start + n])
        out, _ = merge_tokens(part, part.x, counts[i], 1)
        xs.append(out.x)
        sizes.append(out.size if out.size is not None else torch.ones(out.total))
        positions.append(out.pos)
        lengths.append(out.total)
    return torch.cat(xs), torch.cat(sizes), torch.cat(positions), tuple(lengths)


def test_sequence_merges_clamps_by_hand() -> None:
    # (n - 1) // 2 patches at most: 9 tokens -> 4, 2 -> 0, 1 -> 0; negative counts -> 0
    assert sequence_merges([5, 3, 1, -2], (9, 9, 2, 1), 1) == [4, 3, 0, 0]
    assert sequence_merges(3, (9, 4), 1) == [3, 1]
    with pytest.raises(TokenLayoutError, match="one per sequence"):
        sequence_merges([1, 2], (9, 9, 9), 1)


@pytest.mark.parametrize("lengths", [(9, 4, 13, 1, 7), (8, 8, 8)])
def test_per_sequence_counts_equal_each_sequence_alone(lengths: tuple[int, ...]) -> None:
    tokens = ragged(lengths)
    counts = [3, 1, 5, 2, 0][: len(lengths)]
    out, where = merge_tokens(tokens, tokens.x, counts, 1, want_destinations=True)
    x, size, pos, seqlens = merged_alone(tokens, counts)
    clamped = [min(m, (n - 1) // 2) for m, n in zip(counts, lengths, strict=False)]
    assert out.seqlens == seqlens == tuple(n - m for n, m in zip(lengths, clamped, strict=True))
    torch.testing.assert_close(out.x, x)
    torch.testing.assert_close(out.size, size)
    assert torch.equal(out.pos, pos)
    assert where is not None and torch.equal(torch.unique(where), torch.arange(out.total))  # every slot is held


def test_equal_counts_as_a_list_are_the_int_path_bit_for_bit() -> None:
    tokens = ragged((10, 10, 10), seed=3)
    one, _ = merge_tokens(tokens, tokens.x, 3, 1)
    many, _ = merge_tokens(tokens, tokens.x, [3, 3, 3], 1)
    assert one.seqlens == many.seqlens == (7, 7, 7)
    assert torch.equal(one.x, many.x) and torch.equal(one.size, many.size)
    none, _ = merge_tokens(tokens, tokens.x, [0, 0, 0], 1)
    assert none is tokens
