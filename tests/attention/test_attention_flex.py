"""The FlexAttention backend (compiled): same results as the SDPA paths; clear errors where it cannot run."""

from __future__ import annotations

import pytest
import torch

from vidslim.attention import AttentionPattern, BlockLocalPattern, MaskPattern, attend
from vidslim.errors import AttentionBackendError

HAND_MASK = (torch.rand(9, 9, generator=torch.Generator().manual_seed(0)) < 0.3) | torch.eye(9, dtype=torch.bool)


def packed(seqlens, heads=2, dim=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    total = sum(seqlens)
    q, k, v = (torch.randn(total, heads, dim, generator=gen) for _ in range(3))
    return q, k, v, torch.randn(total, generator=gen)


def test_flex_refuses_cpu_backward_with_a_hint() -> None:
    q, k, v, _ = packed([3, 4])
    q.requires_grad_()
    with pytest.raises(AttentionBackendError, match="backend='sdpa'"):
        attend(q, k, v, [3, 4], backend="flex")


@pytest.mark.slow  # compiles FlexAttention on first use (seconds, longer with a cold inductor cache)
def test_flex_matches_sdpa_on_ragged_batches() -> None:
    with torch.no_grad():
        for seqlens in ([1, 7, 196, 1568], [5, 5, 0, 3], [100]):  # tiny totals go through the padded path
            q, k, v, bias = packed(seqlens)
            for key_bias in (None, bias):
                got = attend(q, k, v, seqlens, key_bias=key_bias, backend="flex")
                want = attend(q, k, v, seqlens, key_bias=key_bias, backend="sdpa")
                torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seqlens", "pattern"),
    [
        ([130, 300, 7], BlockLocalPattern(block_size=64, num_global=1)),
        ([5, 9], MaskPattern(HAND_MASK)),  # a tiny batch: flex_attend pads it with a dummy video
    ],
)
def test_flex_with_a_pattern_matches_sdpa(seqlens: list[int], pattern: AttentionPattern) -> None:
    q, k, v, bias = packed(seqlens, seed=1)
    with torch.no_grad():
        got = attend(q, k, v, seqlens, key_bias=bias, pattern=pattern, backend="flex")
        want = attend(q, k, v, seqlens, key_bias=bias, pattern=pattern, backend="sdpa")
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
