"""The fused CPU kernel of block-sparse attention (vidslim.attention.cpu: block_sparse.c, build.py, kernel.py).

It must give what the gather + SDPA path gives on every layout the SViTT pattern produces (masks, key bias,
release-parity zero keys, CLS rows, ragged batches, strided q/k/v, d != dv) on 1, 2 and 3 threads; hand-built
cases whose softmax is known exactly; its exp is accurate over the whole range; it stays out of the way of
autograd and FLOP counting; and the loader falls back cleanly when it cannot compile.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from kernel_builds import count_builds
from vidslim.attention import block_sparse
from vidslim.attention.block_sparse import GatherGroup, gathered_attend
from vidslim.attention.cpu import build, kernel, native_group_attend, native_kernel
from vidslim.attention.cpu.choose import choose_kernel, gather_kernel_only
from vidslim.attention.svitt_pattern import SViTTPattern

HAVE_COMPILER = build.find_compiler() is not None
HAVE_BLAS = build._torch_blas() is not None
needs_kernel = pytest.mark.skipif(native_kernel() is None, reason="no C compiler or no BLAS sgemm_ in torch here")


@pytest.fixture
def fresh_loader(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """native_kernel() loads anew with a private cache folder, and is reset afterwards."""
    monkeypatch.setenv("VIDSLIM_CACHE_DIR", str(tmp_path))
    build.forget_native_kernel()
    yield
    build.forget_native_kernel()


def test_the_kernel_loads_where_it_can() -> None:
    """A machine with a C compiler and torch's MKL (Linux x86 wheels, this CI) must not fall back silently."""
    if HAVE_COMPILER and HAVE_BLAS:
        loaded = native_kernel()
        assert loaded is not None
        assert loaded.path.exists()


@needs_kernel
@pytest.mark.parametrize("mask_padding", [True, False])
@pytest.mark.parametrize(
    ("block", "num_global", "seqlens"),
    [(4, 0, [24, 24]), (4, 1, [23, 9, 31, 2]), (5, 2, [40]), (20, 1, [97, 41]), (56, 0, [224])],
)
def test_native_equals_gather_path(
    threads: int, monkeypatch: pytest.MonkeyPatch, mask_padding: bool, block: int, num_global: int, seqlens: list[int]
) -> None:
    monkeypatch.setattr(kernel, "PARALLEL_FLOPS", 0)  # share out even these small cases
    gen = torch.Generator().manual_seed(block + num_global)
    total = sum(seqlens)
    qkv = torch.randn(total, 3, 2, 24, generator=gen)
    q, k, _ = qkv.unbind(1)  # strided views, as the models make them
    v = torch.randn(total, 2, 40, generator=gen)  # dv != dk
    bias = torch.randn(total, generator=gen)
    blocks = max(math.ceil(max(n - num_global, 0) / block) for n in seqlens)
    pattern = SViTTPattern(block, 1, 2, num_global, torch.rand(blocks, blocks, generator=gen), mask_padding)
    groups = pattern.plan(seqlens, q.device)
    with torch.inference_mode():
        assert choose_kernel(q, k, v) == "native"
        fused = gathered_attend(q, k, v, groups, key_bias=bias)
        fused_plain = gathered_attend(q, k, v, groups, scale=0.3)
        with gather_kernel_only():
            assert choose_kernel(q, k, v) == "gather"
            reference = gathered_attend(q, k, v, groups, key_bias=bias)
            reference_plain = gathered_attend(q, k, v, groups, scale=0.3)
        assert choose_kernel(q, k, v) == "native"
    torch.testing.assert_close(fused, reference, atol=2e-6, rtol=2e-6)
    torch.testing.assert_close(fused_plain, reference_plain, atol=2e-6, rtol=2e-6)


@needs_kernel
def test_vit_b_case_equals_dense_masked_sdpa() -> None:
    """The benchmark's case (1568 tokens, blocks of 56, 1 local + 3 random) against SDPA with the pattern's mask."""
    gen = torch.Generator().manual_seed(0)
    n, heads, dim = 1568, 12, 64
    q, k, v = torch.randn(n, 3, heads, dim, generator=gen).unbind(1)
    pattern = SViTTPattern(56, 1, 3, 0, torch.rand(28, 28, generator=gen))
    with torch.no_grad():
        fused = gathered_attend(q, k, v, pattern.plan([n], q.device))
        mask = pattern.dense_mask(n)
        dense = F.scaled_dot_product_attention(
            q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), attn_mask=mask
        ).transpose(0, 1)
    torch.testing.assert_close(fused, dense, atol=2e-6, rtol=1e-5)


def one_group(q_index: list[list[int]], kv_index: list[list[int]], identity: bool = False) -> GatherGroup:
    return GatherGroup.build(torch.tensor(q_index), torch.tensor(kv_index), identity=identity)


@needs_kernel
def test_hand_built_softmax() -> None:
    """Zero queries give equal weights: each output is the mean of the values its slots may see (masked slots
    left out, a zero key counts as a key with value 0); empty query slots are not written."""
    v = torch.arange(6 * 2, dtype=torch.float32).view(6, 1, 2)  # row r has values (2r, 2r + 1)
    q = torch.zeros(6, 1, 2)
    k = torch.randn(6, 1, 2)
    groups = [
        one_group([[0, 1], [2, -1]], [[0, 1, 2], [3, -1, 5]]),  # rows 0, 1 see rows 0-2; row 2 sees 3 and 5
        one_group([[4]], [[1, block_sparse.ZERO_KEY]]),  # row 4 sees row 1 and a zero key: (2 + 0) / 2, (3 + 0) / 2
    ]
    with torch.inference_mode():
        out = gathered_attend(q, k, v, groups)
    expected = torch.zeros(6, 1, 2)
    expected[0, 0] = expected[1, 0] = torch.tensor([2.0, 3.0])  # mean of (0, 1), (2, 3), (4, 5)
    expected[2, 0] = torch.tensor([8.0, 9.0])  # mean of (6, 7), (10, 11)
    expected[4, 0] = torch.tensor([1.0, 1.5])
    torch.testing.assert_close(out, expected)  # rows 3 and 5 are in no group: zeros


@needs_kernel
def test_dominant_key_and_key_bias() -> None:
    """A score 80 above the others takes all the weight (exp(-80) < 2e-35); a key bias of -inf masks its key."""
    k = torch.zeros(3, 1, 1)
    k[2] = 80.0
    q = torch.ones(1, 1, 1)
    v = torch.tensor([[[1.0]], [[2.0]], [[7.0]]])
    group = [one_group([[0]], [[0, 1, 2]])]
    with torch.inference_mode():
        picked = gathered_attend(q, k, v, group, scale=1.0)
        masked = gathered_attend(q, k, v, group, key_bias=torch.tensor([0.0, 0.0, -math.inf]), scale=1.0)
    assert picked.item() == pytest.approx(7.0, abs=1e-6)
    assert masked.item() == pytest.approx(1.5, abs=1e-6)


@needs_kernel
def test_exp_is_accurate_over_its_range() -> None:
    """Scores spread over [-100, 0] relative to the row maximum (tails of 16 included): softmax within 1e-6
    relative of float64 (or 1e-38 absolute), and exactly 0 more than 87 below the maximum (where exp leaves
    float32's normal range)."""
    for width in (1, 15, 16, 17, 250):
        scores = -torch.linspace(0, 100, width, dtype=torch.float64)[torch.randperm(width)]
        k = scores.to(torch.float32).view(width, 1, 1)
        q = torch.ones(1, 1, 1)
        v = torch.eye(width).view(width, 1, width)
        with torch.inference_mode():
            weights = gathered_attend(q, k, v, [one_group([[0]], [list(range(width))])], scale=1.0)
        expected = torch.softmax(k.double().view(-1), 0)
        got = weights.view(-1).double()
        assert torch.all((got - expected).abs() <= 1e-6 * expected + 1e-38)
        assert torch.all(got[scores < -87.0] == 0)


@needs_kernel
def test_not_used_under_autograd_or_flop_counting(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(block_sparse, "native_group_attend", lambda *args: calls.append(1))
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(24, 2, 8, generator=gen) for _ in range(3))
    groups = SViTTPattern(4, 1, 2, 0, torch.rand(6, 6, generator=gen)).plan([24], q.device)
    qg = q.clone().requires_grad_()
    gathered_attend(qg, k, v, groups).sum().backward()
    assert qg.grad is not None and calls == []
    with torch.no_grad(), FlopCounterMode(display=False):
        gathered_attend(q, k, v, groups)
    assert calls == []  # the dispatch mode sees the torch ops
    assert choose_kernel(q.double(), k.double(), v.double()) == "gather"
    assert choose_kernel(q.to(torch.bfloat16), k.to(torch.bfloat16), v.to(torch.bfloat16)) == "gather"


@needs_kernel
def test_bad_index_tables_raise_instead_of_crashing() -> None:
    q, k, v = (torch.randn(8, 1, 4) for _ in range(3))
    out = torch.zeros(8, 1, 4)
    with pytest.raises(ValueError, match="kv_rows"):
        native_group_attend(q, k, v, out, None, torch.tensor([[0, 8]]).expand(2, 2), None, None)
    with pytest.raises(ValueError, match="q_rows"):
        native_group_attend(q, k, v, out, torch.tensor([[0, -2]]), torch.tensor([[0, 1]]), None, None)
    with pytest.raises(ValueError, match="shapes"):
        native_group_attend(q, k[:, :, :2], v, out, None, torch.tensor([[0, 1]]), None, None)


def test_switched_off_by_environment(monkeypatch: pytest.MonkeyPatch, fresh_loader: None) -> None:
    monkeypatch.setenv("VIDSLIM_NATIVE", "0")
    assert native_kernel() is None
    q = torch.randn(4, 1, 2)
    assert choose_kernel(q, q, q) == "gather"


@pytest.mark.skipif(not HAVE_BLAS, reason="torch exports no sgemm_ here")
def test_a_failing_compiler_falls_back_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, fresh_loader: None, caplog: pytest.LogCaptureFixture
) -> None:
    false = shutil.which("false")
    if false is None:
        pytest.skip("no `false` program")
    monkeypatch.setenv("CC", false)
    with caplog.at_level(logging.WARNING, logger=build.__name__):
        assert native_kernel() is None
    assert "could not build" in caplog.text and "exit status 1" in caplog.text and "VIDSLIM_NATIVE=0" in caplog.text
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(24, 2, 8, generator=gen) for _ in range(3))
    pattern = SViTTPattern(4, 1, 2, 0, torch.rand(6, 6, generator=gen))
    with torch.inference_mode():
        out = gathered_attend(q, k, v, pattern.plan([24], q.device))  # the gather path
        dense = F.scaled_dot_product_attention(
            q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), attn_mask=pattern.dense_mask(24)
        ).transpose(0, 1)
    torch.testing.assert_close(out, dense, atol=2e-6, rtol=1e-5)


@pytest.mark.skipif(not (HAVE_COMPILER and HAVE_BLAS), reason="no C compiler or no BLAS sgemm_ in torch here")
def test_compiled_once_then_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compiler = build.find_compiler()
    assert compiler is not None
    first = build.compile_kernel(compiler, tmp_path)
    builds = count_builds(monkeypatch)
    assert build.compile_kernel(compiler, tmp_path) == first
    assert builds == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name, f"{first.name}.sha256"]  # no temporary file


@needs_kernel
def test_a_key_bias_that_needs_its_gradient_takes_the_autograd_path() -> None:
    gen = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(24, 2, 8, generator=gen) for _ in range(3))
    groups = SViTTPattern(4, 1, 2, 0, torch.rand(6, 6, generator=gen)).plan([24], q.device)
    bias = torch.randn(24, generator=gen, requires_grad=True)
    assert choose_kernel(q, k, v, bias) == "gather"
    gathered_attend(q, k, v, groups, key_bias=bias).square().sum().backward()
    assert bias.grad is not None and bias.grad.abs().sum() > 0


@needs_kernel
@pytest.mark.filterwarnings("ignore:.*torch.jit.trace.*:DeprecationWarning")
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # shapes read as Python ints: expected here
def test_traced_functions_see_the_attention() -> None:
    """torch.jit.trace cannot see a ctypes call (it would replay the traced output): it records the torch path."""
    gen = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(24, 2, 8, generator=gen) for _ in range(3))
    groups = SViTTPattern(4, 1, 2, 0, torch.rand(6, 6, generator=gen)).plan([24], q.device)
    with torch.no_grad():
        traced = torch.jit.trace(lambda x: gathered_attend(x, k, v, groups), (q,), check_trace=False)
        other = torch.randn(24, 2, 8, generator=gen)
        torch.testing.assert_close(traced(other), gathered_attend(other, k, v, groups), atol=2e-6, rtol=2e-6)


@needs_kernel
def test_rows_with_every_key_masked_or_a_nan_score_match_sdpa() -> None:
    """As the gather + SDPA path: a query whose keys are all masked gets zeros, a NaN key gives a NaN row, and the
    other rows are untouched."""
    gen = torch.Generator().manual_seed(6)
    q, k, v = (torch.randn(6, 1, 4, generator=gen) for _ in range(3))
    k[5, 0, 0] = math.nan
    groups = [one_group([[0, 1], [2, 3]], [[-1, -1, -1], [0, 1, 5]])]  # rows 0, 1: all masked; 2, 3: see a NaN
    groups.append(one_group([[4]], [[0, 1, 2]]))
    with torch.inference_mode():
        fused = gathered_attend(q, k, v, groups)
        with gather_kernel_only():
            reference = gathered_attend(q, k, v, groups)
    assert torch.equal(fused[:2], torch.zeros(2, 1, 4)) and torch.equal(reference[:2], torch.zeros(2, 1, 4))
    assert fused[2:4].isnan().all() and reference[2:4].isnan().all()
    torch.testing.assert_close(fused[4:], reference[4:], atol=2e-6, rtol=2e-6)


@pytest.mark.skipif(not HAVE_BLAS, reason="torch exports no sgemm_ here")
def test_a_library_that_does_not_load_falls_back(
    monkeypatch: pytest.MonkeyPatch, fresh_loader: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A truncated or foreign file where the build should be (or a noexec folder) is logged, not raised."""
    broken = tmp_path / "broken.so"
    broken.write_bytes(b"not a shared library")
    monkeypatch.setattr(build, "find_compiler", lambda: "cc")
    monkeypatch.setattr(build, "compile_kernel", lambda compiler, folder: broken)
    with caplog.at_level(logging.WARNING, logger=build.__name__):
        assert native_kernel() is None
    assert "could not build or load" in caplog.text and "broken.so" in caplog.text
    q, k, v = (torch.randn(8, 1, 4) for _ in range(3))
    assert choose_kernel(q, k, v) == "gather"


@pytest.mark.skipif(not (HAVE_COMPILER and HAVE_BLAS), reason="no C compiler or no BLAS sgemm_ in torch here")
def test_threads_loading_at_once_share_one_build(monkeypatch: pytest.MonkeyPatch, fresh_loader: None) -> None:
    builds = count_builds(monkeypatch)
    with ThreadPoolExecutor(4) as pool:
        kernels = list(pool.map(lambda _: native_kernel(), range(4)))
    assert kernels[0] is not None and all(loaded is kernels[0] for loaded in kernels)
    assert len(builds) == 1


@pytest.mark.skipif(not (HAVE_COMPILER and HAVE_BLAS), reason="no C compiler or no BLAS sgemm_ in torch here")
def test_cc_may_be_a_command_line(monkeypatch: pytest.MonkeyPatch, fresh_loader: None) -> None:
    compiler = build.find_compiler()
    monkeypatch.setenv("CC", f"{compiler} -Wall")
    loaded = native_kernel()
    assert loaded is not None and loaded.path.exists()


@needs_kernel
def test_small_calls_stay_on_the_calling_thread(monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    """Sharing out costs tens of microseconds: calls under PARALLEL_FLOPS run as one share, bigger ones as one
    share per thread."""
    shares: list[int] = []
    run_shares = kernel.run_shares

    def spy(work: object, parts: list[tuple[int, int]]) -> object:
        shares.append(len(parts))
        return run_shares(work, parts)  # type: ignore[arg-type]

    monkeypatch.setattr(kernel, "run_shares", spy)
    gen = torch.Generator().manual_seed(7)
    q, k, v = (torch.randn(48, 4, 16, generator=gen) for _ in range(3))
    groups = SViTTPattern(4, 1, 2, 0, torch.rand(12, 12, generator=gen)).plan([48], q.device)
    with torch.inference_mode():
        small = gathered_attend(q, k, v, groups)
        monkeypatch.setattr(kernel, "PARALLEL_FLOPS", 0)
        shared = gathered_attend(q, k, v, groups)
    assert shares == [1, threads]
    torch.testing.assert_close(small, shared, atol=1e-6, rtol=1e-6)
