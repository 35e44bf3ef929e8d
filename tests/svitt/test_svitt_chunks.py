"""The gathered kernel's chunked CPU path (query blocks attended a few at a time for cache locality, shared out to
single-threaded worker threads) gives the same output as one SDPA call, with masks, key bias, release-parity zero
keys and ragged batches, on one thread and on several. (The path used where the fused C kernel cannot run, see
test_svitt_native.py; here the fused kernel is switched off.)"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import pytest
import torch

from vidslim.attention import block_sparse
from vidslim.attention.cpu import gather_kernel_only, workers
from vidslim.attention.svitt_pattern import SViTTPattern


@pytest.fixture(autouse=True)
def gather_path() -> Iterator[None]:
    with gather_kernel_only():
        yield


@pytest.mark.parametrize("mask_padding", [True, False])
@pytest.mark.parametrize(("num_global", "seqlens"), [(0, [24, 24]), (1, [23, 9, 31, 2]), (2, [40])])
def test_chunked_equals_one_call(
    threads: int, monkeypatch: pytest.MonkeyPatch, mask_padding: bool, num_global: int, seqlens: list[int]
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


def test_no_chunks_under_autograd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(block_sparse, "CHUNK_BYTES", 1)
    q = torch.randn(8, 2, 4)
    assert block_sparse._chunk_rows(q, 5, 8, 4, 4) == 1
    assert block_sparse._chunk_rows(q.requires_grad_(), 5, 8, 4, 4) == 5


def test_chunks_run_on_worker_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """With several threads, the chunks are shared out to two threads (torch's OpenMP team, or the fallback pool),
    each running torch with one intra-op thread (it cannot share out again); the caller's count is left alone."""
    seen: list[tuple[int, int]] = []
    sdpa = block_sparse._sdpa

    def spy(*args: object) -> torch.Tensor:
        seen.append((threading.get_native_id(), workers.workers_available()))
        return sdpa(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(block_sparse, "_sdpa", spy)
    monkeypatch.setattr(block_sparse, "CHUNK_BYTES", 1)
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(48, 2, 8, generator=gen) for _ in range(3))
    groups = SViTTPattern(4, 1, 2, 0, torch.rand(12, 12, generator=gen)).plan([48], q.device)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with torch.no_grad():
            block_sparse.gathered_attend(q, k, v, groups)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert len(seen) == 12
    assert {count for _, count in seen} == {1}
    assert len({thread for thread, _ in seen}) == 2


def test_worker_errors_reach_the_caller() -> None:
    def work(share: int) -> int:
        if share == 1:
            raise ValueError("share 1 failed")
        return share * 10

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert workers.run_shares(work, [0, 2, 3]) == [0, 20, 30]
        with pytest.raises(ValueError, match="share 1 failed"):
            workers.run_shares(work, [0, 1])
    finally:
        torch.set_num_threads(before)


def test_fallback_pool_runs_shares_on_its_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "_gnu_openmp", lambda: None)  # as on a torch without GNU OpenMP
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        names = workers.run_shares(lambda _: (threading.current_thread().name, torch.get_num_threads()), [0, 1])
    finally:
        torch.set_num_threads(before)
    assert {name.startswith("vidslim-cpu-") for name, _ in names} == {True}
    assert [count for _, count in names] == [1, 1]


def test_split_evenly() -> None:
    assert workers.split_evenly(7, 2) == [(0, 3), (3, 7)]
    assert workers.split_evenly(2, 4) == [(0, 1), (1, 2)]
    assert workers.split_evenly(0, 3) == [(0, 0)]


def test_fallback_pool_is_rebuilt_when_the_thread_count_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "_gnu_openmp", lambda: None)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        workers.run_shares(lambda share: share, [0, 1])
        old = [t for t in threading.enumerate() if t.name.startswith("vidslim-cpu-")]
        torch.set_num_threads(3)
        assert workers.run_shares(lambda share: share * 2, [0, 1, 2]) == [0, 2, 4]
    finally:
        torch.set_num_threads(before)
    for thread in old:
        thread.join(timeout=5)
    assert old and not any(thread.is_alive() for thread in old)  # the old pool's threads ended
