"""Random masking keeps exactly the fraction it is asked for (the release keeps p·N - 1)."""

from __future__ import annotations

import pytest
import torch

from vidslim.tokenize.random_mask import random_keep_mask


@pytest.mark.parametrize(("keep", "expected"), [(0.1, 157), (0.5, 784), (0.7, 1098), (1.0, 1568)])
def test_keeps_round_fraction(keep: float, expected: int) -> None:
    base = torch.ones(3, 8, 14, 14, dtype=torch.bool)
    mask = random_keep_mask(base, keep, torch.Generator().manual_seed(0))
    assert mask.shape == base.shape
    assert mask.flatten(1).sum(1).tolist() == [expected] * 3


def test_only_allowed_tokens_are_kept_and_counts_follow_each_clip() -> None:
    base = torch.zeros(2, 4, 2, 2, dtype=torch.bool)
    base[0, 0] = True  # 4 allowed
    base[1] = True  # 16 allowed
    mask = random_keep_mask(base, 0.5, torch.Generator().manual_seed(1))
    assert not (mask & ~base).any()
    assert mask.flatten(1).sum(1).tolist() == [2, 8]


def test_at_least_one_token_and_seeded() -> None:
    base = torch.ones(1, 10, dtype=torch.bool)
    assert int(random_keep_mask(base, 0.01).sum()) == 1
    a = random_keep_mask(base, 0.5, torch.Generator().manual_seed(7))
    b = random_keep_mask(base, 0.5, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_every_token_is_equally_likely() -> None:
    base = torch.ones(2000, 8, dtype=torch.bool)
    freq = random_keep_mask(base, 0.25, torch.Generator().manual_seed(2)).float().mean(0)
    assert torch.allclose(freq, torch.full((8,), 0.25), atol=0.04)


@pytest.mark.parametrize("keep", [0.0, -0.1, 1.5])
def test_bad_fraction(keep: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        random_keep_mask(torch.ones(1, 4, dtype=torch.bool), keep)
