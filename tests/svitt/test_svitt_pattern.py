"""SViTT's edge-sparsity pattern: a hand-built mask, the random blocks, the gathered kernel against masked
softmax references (forward and backward), padding, and densities."""

from __future__ import annotations

import math

import pytest
import torch

from vidslim.attention import attend
from vidslim.attention.svitt import SparseAttention
from vidslim.attention.svitt_pattern import SViTTPattern, attention_density, block_table
from vidslim.errors import ConfigError

# 1 CLS + 10 body tokens in blocks of 3: B0 = 1..3, B1 = 4..6, B2 = 7..9, B3 = 10 (short: 2 padded slots).
# Each block picks the eligible block (not itself) with the smallest score: B0->B3, B1->B0, B2->B1, B3->B2.
HAND_SCORES = torch.tensor(
    [
        [0.9, 0.5, 0.7, 0.1],
        [0.2, 0.9, 0.3, 0.8],
        [0.6, 0.4, 0.0, 0.5],
        [0.3, 0.2, 0.1, 0.9],
    ]
)


def hand_mask() -> torch.Tensor:
    keys = {0: range(11), 1: [1, 2, 3, 10], 2: [1, 2, 3, 10], 3: [1, 2, 3, 10]}
    keys |= {4: range(1, 7), 5: range(1, 7), 6: range(1, 7), 7: range(4, 10), 8: range(4, 10), 9: range(4, 10)}
    keys |= {10: [7, 8, 9, 10]}
    mask = torch.zeros(11, 11, dtype=torch.bool)
    for row, cols in keys.items():
        mask[row, list(cols)] = True
    mask[:, 0] = True  # every query sees the CLS key
    return mask


def masked_reference(q, k, v, seqlens, masks, key_bias=None, zero_keys=None):
    """Per video: softmax(q k^T / sqrt(d) + bias, masked) v in float64; zero_keys[i][row] extra zero keys."""
    outs = []
    start = 0
    for i, n in enumerate(seqlens):
        qs, ks, vs = (t[start:start + n].double().transpose(0, 1) for t in (q, k, v))
        logits = qs @ ks.transpose(-1, -2) / math.sqrt(qs.shape[-1])
        if key_bias is not None:
            logits = logits + key_bias[start:start + n].double()
        logits = logits.masked_fill(~masks[i], float("-inf"))
        extra = torch.zeros(n, dtype=torch.float64) if zero_keys is None else zero_keys[i].double()
        peak = logits.amax(-1, keepdim=True).clamp_min(0)  # zero keys have logit 0
        weights = (logits - peak).exp()
        norm = weights.sum(-1, keepdim=True) + extra[:, None] * (-peak).exp()
        outs.append(((weights / norm) @ vs).transpose(0, 1))
        start += n
    return torch.cat(outs)


def test_block_table_by_hand() -> None:
    table = block_table(HAND_SCORES, local=1, random=1)
    expected = torch.tensor([[1, 0, 0, 1], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(table[3], expected)
    # a video of 2 blocks: each block sees itself and the only other block
    assert torch.equal(table[1, :2, :2], torch.ones(2, 2, dtype=torch.bool))
    assert not table[1, 2:].any() and not table[1, :, 2:].any()


def test_pattern_equals_a_hand_built_mask() -> None:
    pattern = SViTTPattern(block=3, local=1, random=1, num_global=1, scores=HAND_SCORES)
    assert torch.equal(pattern.dense_mask(11), hand_mask())


@pytest.mark.parametrize("with_bias", [False, True])
def test_kernel_equals_hand_masked_softmax_with_padded_keys_masked(with_bias: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(11, 2, 8, generator=gen) for _ in range(3))
    bias = torch.randn(11, generator=gen) if with_bias else None
    pattern = SViTTPattern(block=3, local=1, random=1, num_global=1, scores=HAND_SCORES)
    out = pattern.sparse_attend(q, k, v, [11], key_bias=bias)
    torch.testing.assert_close(out.double(), masked_reference(q, k, v, [11], [hand_mask()], bias), atol=1e-5, rtol=1e-5)


def test_release_parity_lets_zero_padded_keys_take_softmax_mass() -> None:
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(11, 2, 8, generator=gen) for _ in range(3))
    pattern = SViTTPattern(block=3, local=1, random=1, num_global=1, scores=HAND_SCORES, mask_padding=False)
    out = pattern.sparse_attend(q, k, v, [11])
    # the short block B3 has 2 padded slots: seen by B3's own query (10) and by B0's queries (1..3), which pick B3
    zero_keys = torch.tensor([0, 2, 2, 2, 0, 0, 0, 0, 0, 0, 2])
    expected = masked_reference(q, k, v, [11], [hand_mask()], zero_keys=[zero_keys])
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out, SViTTPattern(3, 1, 1, 1, HAND_SCORES).sparse_attend(q, k, v, [11]))


@pytest.mark.parametrize("num_global", [0, 1, 2])
@pytest.mark.parametrize("seqlens", [[20, 20], [23, 9, 31, 2], [5]])
def test_kernel_equals_mask_path_on_ragged_batches(num_global: int, seqlens: list[int]) -> None:
    gen = torch.Generator().manual_seed(2)
    total = sum(seqlens)
    q, k, v = (torch.randn(total, 3, 4, generator=gen) for _ in range(3))
    bias = torch.randn(total, generator=gen)
    blocks = max(math.ceil(max(n - num_global, 0) / 4) for n in seqlens)
    pattern = SViTTPattern(4, 3, 2, num_global, torch.rand(blocks, blocks, generator=gen))
    out = pattern.sparse_attend(q, k, v, seqlens, key_bias=bias)
    masks = [pattern.dense_mask(n) for n in seqlens]
    torch.testing.assert_close(out.double(), masked_reference(q, k, v, seqlens, masks, bias), atol=1e-5, rtol=1e-5)
    reference = attend(q, k, v, seqlens, key_bias=bias, pattern=pattern, backend="padded")
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)


def test_kernel_backward_matches_the_masked_reference() -> None:
    gen = torch.Generator().manual_seed(3)
    seqlens = [13, 7]
    q, k, v = (torch.randn(20, 2, 4, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3))
    pattern = SViTTPattern(3, 1, 1, 1, torch.rand(4, 4, generator=gen))
    weight = torch.randn(20, 2, 4, generator=gen, dtype=torch.float64)
    grads = torch.autograd.grad((pattern.sparse_attend(q, k, v, seqlens) * weight).sum(), (q, k, v))
    masks = [pattern.dense_mask(n) for n in seqlens]
    expected = torch.autograd.grad((masked_reference(q, k, v, seqlens, masks) * weight).sum(), (q, k, v))
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want)


def test_each_query_block_sees_its_window_and_exactly_random_other_blocks() -> None:
    scores = torch.rand(12, 12, generator=torch.Generator().manual_seed(4))
    for local, random in ((1, 3), (3, 2)):
        table = block_table(scores, local, random)
        for m in range(1, 13):
            for i in range(m):
                window = {(i + d) % m for d in range(-(local // 2), local // 2 + 1)}
                chosen = set(torch.nonzero(table[m - 1, i]).flatten().tolist())
                assert window <= chosen
                assert len(chosen - window) == min(random, m - len(window))
                assert max(chosen) < m


def test_same_seed_same_patterns_redrawn_in_training_fixed_in_eval() -> None:
    seqlens = [200, 150]

    def tables(sparse: SparseAttention, training: bool, layer: int = 0) -> list[torch.Tensor]:
        return [sparse.pattern(seqlens, 1, layer, training).table for _ in range(3)]  # type: ignore[union-attr]

    a, b = SparseAttention(block=8, seed=7), SparseAttention(block=8, seed=7)
    train_a, train_b = tables(a, True), tables(b, True)
    assert all(torch.equal(x, y) for x, y in zip(train_a, train_b, strict=True))  # same seed, same stream
    assert not torch.equal(train_a[0], train_a[1])  # redrawn at every training forward
    evals = tables(a, False)
    assert all(torch.equal(evals[0], t) for t in evals)  # fixed in eval
    assert torch.equal(evals[0], tables(SparseAttention(block=8, seed=7), False)[0])
    assert not torch.equal(evals[0], tables(a, False, layer=1)[0])  # but different per layer
    assert not torch.equal(evals[0], tables(SparseAttention(block=8, seed=8), False)[0])
    release = SparseAttention(block=8, seed=7, resample="always")
    assert not torch.equal(tables(release, False)[0], tables(release, False)[0])


def test_dense_when_blocks_cover_every_key() -> None:
    sparse = SparseAttention(block=56, local=1, random=3)
    assert sparse.pattern([1 + 4 * 56], 1, 0, True) is None  # 4 blocks: local + 3 random = everything
    assert sparse.pattern([1 + 4 * 56 + 1], 1, 0, True) is not None


def test_density_counts_allowed_pairs() -> None:
    # spec §2's table: 1568 tokens (no CLS), 28 blocks of 56, 1 local + 3 random -> 224 / 1568 of the keys
    pattern = SparseAttention().pattern([1568], 0, 0, False)
    assert pattern is not None
    assert attention_density(pattern, [1568]) == pytest.approx(224 / 1568)
    gen = torch.Generator().manual_seed(5)
    ragged = SViTTPattern(4, 1, 2, 1, torch.rand(8, 8, generator=gen))
    seqlens = [30, 17, 9]
    by_mask = sum(int(ragged.dense_mask(n).sum()) for n in seqlens) / sum(n * n for n in seqlens)
    assert attention_density(ragged, seqlens) == pytest.approx(by_mask)
    assert attention_density(None, seqlens) == 1.0


def test_pattern_errors_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="odd local"):
        SparseAttention(local=2)
    with pytest.raises(ConfigError, match="order"):
        SparseAttention(order="snake")
    pattern = SViTTPattern(4, 1, 1, 0, torch.rand(2, 2))
    with pytest.raises(ConfigError, match="list SparseAttention after"):
        pattern.dense_mask(20)


@pytest.mark.slow  # compiles FlexAttention (seconds)
def test_flex_block_mask_runs_the_same_pattern() -> None:
    gen = torch.Generator().manual_seed(6)
    seqlens = [150, 97, 201]
    q, k, v = (torch.randn(sum(seqlens), 2, 16, generator=gen) for _ in range(3))
    pattern = SViTTPattern(16, 1, 3, 1, torch.rand(13, 13, generator=gen))
    with torch.no_grad():
        flex = attend(q, k, v, seqlens, pattern=pattern, backend="flex")
    torch.testing.assert_close(flex, pattern.sparse_attend(q, k, v, seqlens), atol=1e-5, rtol=1e-5)
