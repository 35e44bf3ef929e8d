"""The gathered kernel's single-threaded chunked path (query blocks attended a few at a time for cache locality)
gives the same output as one SDPA call, with masks, key bias, release-parity zero keys and ragged batches."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch

from vidslim.attention import block_sparse
from vidslim.attention.svitt_pattern import SViTTPattern


@pytest.fixture
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("mask_padding", [True, False])
@pytest.mark.parametrize(("num_global", "seqlens"), [(0, [24, 24]), (1, [23, 9, 31, 2]), (2, [40])])
def test_chunked_equals_one_call(
    one_thread: None, monkeypatch: pytest.MonkeyPatch, mask_padding: bool, num_global: int, seqlens: list[int]
) -> None:
    gen = torch.Generator().manual_seed(3)
    total = sum(seqlens)
    q, k, v = (torch.randn(total, 2, 8, generator=gen) for _ in range(3))
    bias = torch.randn(total, generator=gen)
    blocks = max(math.ceil(max(n - num_global, 0) / 4) for n in seqlens)
    pattern = SViTTPattern(4, 1, 2, num_global, torch.rand(blocks, blocks, generator=gen), mask_padding)
    groups = pattern.plan(seqlens, q.device)
    with torch.inference_mode():
        monkeypatch.setattr(block_sparse, "CHUNK_BYTES", 1 << 40)  # one call
        assert block_sparse._chunk_rows(q, 7, 16, 8, 8) == 7
        whole = block_sparse.gathered_attend(q, k, v, groups, key_bias=bias)
        monkeypatch.setattr(block_sparse, "CHUNK_BYTES", 1)  # one query block per call
        assert block_sparse._chunk_rows(q, 7, 16, 8, 8) == 1
        chunked = block_sparse.gathered_attend(q, k, v, groups, key_bias=bias)
        plain = block_sparse.gathered_attend(q, k, v, groups)
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=1e-6)
    assert not torch.allclose(plain, chunked)  # the bias reached every chunk


def test_no_chunks_with_several_threads_or_autograd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(block_sparse, "CHUNK_BYTES", 1)
    q = torch.randn(8, 2, 4)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert block_sparse._chunk_rows(q, 5, 8, 4, 4) == 5
        torch.set_num_threads(1)
        assert block_sparse._chunk_rows(q, 5, 8, 4, 4) == 1
        assert block_sparse._chunk_rows(q.requires_grad_(), 5, 8, 4, 4) == 5
    finally:
        torch.set_num_threads(threads)
