"""The fused CPU kernel of block-sparse attention (block_sparse.c), called through ctypes.

Why a kernel of our own: on CPU, torch can only run block-sparse attention as gather-then-SDPA. The gathers copy
every key block once per query block that uses it through memory, and torch's SDPA runs the small tiles of a
block pattern well below its rate on a full sequence (it cuts queries into short chunks), which keeps that path
clearly short of the speedup the density ratio allows. The kernel does one (head, query block) at a time with
everything in cache: copy the block's queries, keys and values of one head into small tiles, one BLAS sgemm for
the scores, a vectorised softmax, one sgemm for the output, rows written straight to their packed places. The
figures for both: BENCHMARKS.md, from benchmarks/svitt_speed.py.

Work items (head x query block) are shared out to torch's threads by `workers.run_shares`. The kernel covers
float32 CPU tensors without autograd, outside dispatch modes and tracers (`choose.choose_kernel` decides). Rows
are as SDPA's: a NaN score gives a NaN row, a row whose keys are all masked gives zeros. Building and loading the
library: `vidslim.attention.cpu.build`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidslim.attention.cpu.build import Strides, native_kernel
from vidslim.attention.cpu.workers import run_shares, split_evenly, workers_available

#: below this many FLOPs one call runs on the calling thread: sharing out (one OpenMP region and a Python callback
#: per thread) costs about as much as a call this size computes
PARALLEL_FLOPS = 10_000_000


def _unit_last(t: Tensor) -> Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


def _check_rows(name: str, rows: Tensor, low: int, high: int) -> None:
    """Index tables are read unchecked in C: an index out of [low, high) raises here instead of crashing there."""
    if rows.dtype != torch.int64:
        raise TypeError(f"{name} must be int64, got {rows.dtype}")
    if rows.numel() and (int(rows.min()) < low or int(rows.max()) >= high):
        raise ValueError(f"{name} holds rows outside [{low}, {high}): {int(rows.min())}..{int(rows.max())}")


def native_group_attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    q_rows: Tensor | None,
    kv_rows: Tensor,
    bias: Tensor | None,
    scale: float | None,
) -> None:
    """Attention of one group of query blocks, written into the packed rows of `out` [total, H, dv].

    q, k, v: packed [rows, H, d] float32 CPU tensors (any strides); q_rows [R, bq] the packed row of every query
    slot (-1: empty, not written) or None for the identity layout of R blocks of bq = total / R rows; kv_rows
    [R, K] the rows each block sees (valid rows only; masked slots read any row and get -inf in bias);
    bias [R, K] float32 or None. Work items (head, block) are shared out to torch's threads.
    """
    kernel = native_kernel()
    assert kernel is not None, 'call choose_kernel first: this runs only where it says "native"'
    assert out.stride(-1) == 1 and out.dtype == torch.float32
    q, k, v = _unit_last(q), _unit_last(k), _unit_last(v)
    blocks, kk = kv_rows.shape
    heads, dk, dv = q.shape[1], q.shape[2], v.shape[2]
    if k.shape[1:] != (heads, dk) or v.shape[1] != heads or out.shape[1:] != (heads, dv):
        shapes = ", ".join(f"{name} {tuple(t.shape)}" for name, t in zip("qkvo", (q, k, v, out), strict=True))
        raise ValueError(f"block-sparse attention: packed [rows, heads, d] shapes do not match: {shapes}")
    if blocks == 0 or q.shape[0] == 0:
        return  # no query to write
    bq = q_rows.shape[1] if q_rows is not None else q.shape[0] // blocks
    q_rows = q_rows.contiguous() if q_rows is not None else None
    kv_rows = kv_rows.contiguous()
    _check_rows("kv_rows", kv_rows, 0, min(k.shape[0], v.shape[0]))
    if q_rows is not None:
        if q_rows.shape[0] != blocks:
            raise ValueError(f"q_rows has {q_rows.shape[0]} blocks, kv_rows {blocks}")
        _check_rows("q_rows", q_rows, -1, min(q.shape[0], out.shape[0]))
    elif blocks * bq != q.shape[0] or out.shape[0] != q.shape[0]:
        raise ValueError(f"identity layout: {blocks} blocks of {bq} rows do not cover the {q.shape[0]} queries")
    if bias is not None and bias.shape != kv_rows.shape:
        raise ValueError(f"bias {tuple(bias.shape)} must match kv_rows {tuple(kv_rows.shape)}")
    bias = bias.to(torch.float32).contiguous() if bias is not None else None
    scale = dk**-0.5 if scale is None else scale
    strides = [Strides(t.stride(0), t.stride(1)) for t in (q, k, v, out)]

    def attend(share: tuple[int, int]) -> None:  # ctypes releases the GIL for the call
        status = kernel.attend(
            q.data_ptr(), strides[0], k.data_ptr(), strides[1], v.data_ptr(), strides[2], out.data_ptr(),
            strides[3], dk, dv, blocks, bq, kk, None if q_rows is None else q_rows.data_ptr(), kv_rows.data_ptr(),
            None if bias is None else bias.data_ptr(), scale, share[0], share[1], kernel.sgemm,
            kernel.set_blas_threads,
        )  # fmt: skip
        if status != 0:
            raise MemoryError(f"block-sparse attention: no memory for the tiles of {kk} keys x {bq} queries")

    flops = 2 * heads * blocks * bq * kk * (dk + dv)
    workers = workers_available() if flops >= PARALLEL_FLOPS else 1
    run_shares(attend, split_evenly(heads * blocks, workers))
