"""Gathered block-sparse attention: each query block attends to a short list of key slots, in one SDPA call.

A block-sparse pattern (SViTT's local + random blocks, say) is given as index tables over the packed rows:

    q_index  [R, bq]  the packed row of every query of each of R query blocks (-1: an empty slot)
    kv_index [R, K]   the packed rows of the K keys that block may see (-1: masked; ZERO_KEY: a zero key and
                      zero value that is *not* masked, to reproduce the SViTT release's unmasked padding)

Two kernels run these tables, with the same results; `vidslim.attention.cpu.choose_kernel` picks one per call:
- "native", float32 on CPU without autograd: the fused C kernel of `vidslim.attention.cpu` (one head and one
  query block at a time, in cache: copy its queries, keys and values, sgemm, softmax, sgemm, write the rows),
  shared out to torch's threads;
- "gather", everywhere else (GPU, autograd, bf16, tracers, no C compiler): the keys of every block are gathered
  with one `index_select` into [R, K, H, d] and all blocks run as one batched `F.scaled_dot_product_attention`
  call of R x H rows of bq queries by K keys: no Python loop over blocks (the SViTT release loops over query
  blocks), the fused CPU/GPU SDPA kernels, and a backward pass. Masked slots (empty key slots, padding past the
  end of a video) get -inf through the additive mask, left out entirely when every slot is a real key and there
  is no key bias. On CPU the query blocks go in chunks whose gathered keys and values stay in cache
  (`_chunk_rows`), shared out to single-threaded workers (`vidslim.attention.cpu.run_shares`). The gathers and
  SDPA's rate on small tiles cap this path below the fused kernel on CPU; both are timed side by side in
  BENCHMARKS.md (benchmarks/svitt_speed.py).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from vidslim.attention.cpu import choose_kernel, native_group_attend, run_shares, split_evenly, workers_available

#: kv_index value of a slot holding a zero key and value that is not masked (release parity, see module doc)
ZERO_KEY = -2

#: per-thread reusable gather buffers: {thread id: {(slot, dtype): buffer}} (the pool's worker threads included)
_buffers: dict[int, dict[tuple[str, torch.dtype], Tensor]] = {}
_buffers_lock = threading.Lock()


def _thread_buffer(slot: str, rows: int, like: Tensor) -> Tensor:
    """This thread's reusable CPU buffer [rows, *like.shape[1:]] for gathered rows of `like` (grown as needed).

    The gathered keys and values are 1 + random times the size of k and v (tens of MB for ViT-B video). A fresh
    buffer of that size is paged in from the OS on every call (glibc maps allocations this large anew each
    time), which took about as long as the attention itself; the reused buffer is paged in once. Each thread has
    its own (worker threads fill theirs concurrently); `release_workspace()` frees them all.
    """
    shape = (rows, *like.shape[1:])
    numel = math.prod(shape)
    ident = threading.get_ident()
    buffers = _buffers.get(ident)
    if buffers is None:
        with _buffers_lock:
            buffers = _buffers.setdefault(ident, {})
    buffer = buffers.get((slot, like.dtype))
    if buffer is None or buffer.numel() < numel:
        with torch.inference_mode(False):  # a normal tensor, writable both inside and outside inference mode
            buffer = torch.empty(numel, dtype=like.dtype)
        buffers[(slot, like.dtype)] = buffer
    return buffer[:numel].view(shape)


def _gather_rows(t: Tensor, rows: Tensor, slot: str) -> Tensor:
    """t.index_select(0, rows); on CPU without autograd, into this thread's reusable buffer (`_thread_buffer`)."""
    if t.device.type != "cpu" or (torch.is_grad_enabled() and t.requires_grad):
        return t.index_select(0, rows)
    return torch.index_select(t, 0, rows, out=_thread_buffer(slot, rows.shape[0], t))


def release_workspace() -> None:
    """Free every thread's reusable gather buffers (see `_gather_rows`)."""
    with _buffers_lock:
        _buffers.clear()


@dataclasses.dataclass(frozen=True, eq=False)
class GatherGroup:
    """Query blocks of one shape: R blocks of bq query slots, each seeing K key slots.

    identity:  q_index is exactly arange(total).view(R, bq), so queries are read and outputs written as views
    all_valid: kv_index holds only real rows (no -1, no ZERO_KEY), so no mask is needed
    zero_keys: kv_index holds ZERO_KEY slots
    q_dest / q_src: packed rows of the real query slots, and their positions in q_index.flatten()
    kv_rows: kv_index.flatten() as rows to gather (masked slots read row 0; ZERO_KEY slots read the appended zero
             row, index -1 of the extended k and v)
    """

    q_index: Tensor
    kv_index: Tensor
    identity: bool = False
    all_valid: bool = False
    zero_keys: bool = False
    q_dest: Tensor | None = None
    q_src: Tensor | None = None
    kv_rows: Tensor | None = None

    @classmethod
    def build(cls, q_index: Tensor, kv_index: Tensor, identity: bool = False) -> GatherGroup:
        """A group from its index tables; works out the flags and the gather/scatter indices (one host sync)."""
        all_valid = bool((kv_index >= 0).all()) if kv_index.numel() else True
        zero_keys = bool((kv_index == ZERO_KEY).any()) if kv_index.numel() else False
        rows = kv_index.clamp_min(0).reshape(-1)
        if zero_keys:  # -1 is the zero row appended by gathered_attend, as a negative index
            rows = torch.where(kv_index == ZERO_KEY, -1, kv_index.clamp_min(0)).reshape(-1)
        if identity:
            return cls(q_index, kv_index, True, all_valid, zero_keys, kv_rows=rows)
        flat = q_index.reshape(-1)
        src = torch.nonzero(flat >= 0).reshape(-1)
        return cls(q_index, kv_index, False, all_valid, zero_keys, flat[src], src, rows)

    def pairs(self) -> int:
        """(query, key) pairs between real queries and real keys (ZERO_KEY slots not counted)."""
        q_real = (self.q_index >= 0).sum(-1)
        kv_real = (self.kv_index >= 0).sum(-1)
        return int((q_real * kv_real).sum())


#: CPU: gathered keys + values per chunk of query blocks, small enough to stay in cache while they are used
CHUNK_BYTES = 3 << 20


def _chunk_rows(q: Tensor, r: int, kk: int, dk: int, dv: int) -> int:
    """Query blocks per SDPA call: all of them on GPU or under autograd; on CPU without autograd, chunks whose
    gathered keys and values fit in CHUNK_BYTES, gathered and attended one after the other by each worker.

    Why: a chunk's keys and values are written by the gather and read by SDPA while still in cache, instead of
    a buffer of tens of MB going through memory twice (a clear gain on the ViT-B case of
    benchmarks/svitt_speed.py). With several threads the chunks are shared out to single-threaded workers
    (`_group_attend`): as parallel regions of their own, one after the other, they were slower than one call
    (much slower on a loaded machine, from the barriers).
    """
    if q.device.type != "cpu" or (torch.is_grad_enabled() and q.requires_grad):
        return r
    return min(r, max(1, CHUNK_BYTES // (kk * q.shape[1] * (dk + dv) * q.element_size())))


@dataclasses.dataclass(frozen=True)
class _Chunk:
    """One SDPA call over some query blocks, its inputs prepared up front (views and index tables, so a worker
    thread only gathers and attends): queries as a view [n, bq, H, d] or as packed rows to gather [n * bq], the
    key rows [n * K], the additive mask [n, 1, 1, K] or None, and the output view [n, bq, H, dv] to fill."""

    q_view: Tensor | None
    q_rows: Tensor | None
    kv_rows: Tensor
    mask: Tensor | None
    out: Tensor


def _chunks(
    q: Tensor, group: GatherGroup, rows: Tensor, out: Tensor, step: int, key_bias: Tensor | None
) -> list[_Chunk]:
    """The group's query blocks cut into chunks of `step` blocks, with their inputs (see `_Chunk`)."""
    r, bq = group.q_index.shape
    kk = group.kv_index.shape[1]
    mask = _group_mask(group, rows, key_bias, q)
    mask = None if mask is None else mask[:, None, None, :]
    q_view = q.reshape(r, bq, *q.shape[1:]) if group.identity else None
    q_rows = None if group.identity else group.q_index.clamp_min(0).view(r * bq)
    kv_rows = rows.view(r, kk)
    return [
        _Chunk(
            None if q_view is None else q_view[lo:hi],
            None if q_rows is None else q_rows[lo * bq : hi * bq],
            kv_rows[lo:hi].reshape(-1),
            None if mask is None else mask[lo:hi],
            out[lo:hi],
        )
        for lo, hi in ((lo, min(r, lo + step)) for lo in range(0, r, step))
    ]


def _attend_chunk(chunk: _Chunk, q: Tensor, k: Tensor, v: Tensor, scale: float | None) -> Tensor:
    """Gather a chunk's queries, keys and values and attend -> [n, bq, H, dv] (a transposed view of SDPA's out)."""
    n, bq, heads = chunk.out.shape[:3]
    qg = chunk.q_view if chunk.q_view is not None else q.index_select(0, chunk.q_rows).view(n, bq, heads, -1)
    kg = _gather_rows(k, chunk.kv_rows, "k").view(n, -1, heads, k.shape[-1])
    vg = _gather_rows(v, chunk.kv_rows, "v").view(n, -1, heads, v.shape[-1])
    return _sdpa(qg, kg, vg, chunk.mask, scale)


def _sdpa(qg: Tensor, kg: Tensor, vg: Tensor, mask: Tensor | None, scale: float | None) -> Tensor:
    """SDPA over tiles in [n, rows, H, d] layout -> [n, bq, H, dv]."""
    out = F.scaled_dot_product_attention(
        qg.transpose(1, 2), kg.transpose(1, 2), vg.transpose(1, 2), attn_mask=mask, scale=scale
    )
    return out.transpose(1, 2)


def _attend_share(
    chunks: Sequence[_Chunk], q: Tensor, k: Tensor, v: Tensor, step: int, kk: int, scale: float | None
) -> None:
    """One worker's run of chunks, each gathered into this thread's buffers and attended into its output view.

    The lean loop matters: it runs on every thread at once and each Python step holds the GIL, so the buffers
    are fetched once per run, not per chunk (a measurable gain on 2 threads, ViT-B case).
    """
    heads = q.shape[1]
    kbuf, vbuf = _thread_buffer("k", step * kk, k), _thread_buffer("v", step * kk, v)
    qbuf = _thread_buffer("q", step * chunks[0].out.shape[1], q) if chunks and chunks[0].q_rows is not None else None
    for chunk in chunks:
        n, bq = chunk.out.shape[:2]
        rows = n * kk
        kg = torch.index_select(k, 0, chunk.kv_rows, out=kbuf[:rows]).view(n, kk, heads, -1)
        vg = torch.index_select(v, 0, chunk.kv_rows, out=vbuf[:rows]).view(n, kk, heads, -1)
        if chunk.q_view is not None:
            qg = chunk.q_view
        else:
            assert qbuf is not None and chunk.q_rows is not None
            qg = torch.index_select(q, 0, chunk.q_rows, out=qbuf[: n * bq]).view(n, bq, heads, -1)
        chunk.out.copy_(_sdpa(qg, kg, vg, chunk.mask, scale))


def _group_attend(
    q: Tensor, k: Tensor, v: Tensor, group: GatherGroup, key_bias: Tensor | None, scale: float | None
) -> Tensor:
    """Attention of one group -> [R, bq, H, dv] (k, v, key_bias already extended by a zero row if needed)."""
    r, bq = group.q_index.shape
    kk = group.kv_index.shape[1]
    rows = _group_rows(group, k.shape[0])
    step = max(1, _chunk_rows(q, r, kk, q.shape[2], v.shape[-1]))  # (1 for a group without blocks)
    out = q.new_empty(r, bq, q.shape[1], v.shape[-1])
    chunks = _chunks(q, group, rows, out, step, key_bias)
    if len(chunks) == 1:
        return _attend_chunk(chunks[0], q, k, v, scale)

    def attend_chunks(share: tuple[int, int]) -> None:  # a few cache-sized chunks of query blocks (_chunk_rows)
        _attend_share(chunks[share[0] : share[1]], q, k, v, step, kk, scale)

    run_shares(attend_chunks, split_evenly(len(chunks), workers_available()))
    return out


def _group_rows(group: GatherGroup, keys: int) -> Tensor:
    """The packed rows to read for the group's key slots (masked slots read row 0, ZERO_KEY slots the zero row
    appended last to k and v, which then have `keys` rows)."""
    rows = group.kv_rows if group.kv_rows is not None else group.kv_index.clamp_min(0).reshape(-1)
    return torch.remainder(rows, keys) if group.zero_keys else rows


def _group_mask(group: GatherGroup, rows: Tensor, key_bias: Tensor | None, like: Tensor) -> Tensor | None:
    """The additive [R, K] score bias of the group's key slots (-inf where masked) in `like`'s dtype and device,
    or None when there is none."""
    if group.all_valid and key_bias is None:
        return None
    r, kk = group.kv_index.shape
    bias = key_bias.to(like.dtype)[rows].view(r, kk) if key_bias is not None else like.new_zeros(r, kk)
    return bias.masked_fill(group.kv_index == -1, float("-inf"))


def _native_attend(
    q: Tensor, k: Tensor, v: Tensor, groups: Sequence[GatherGroup], key_bias: Tensor | None, scale: float | None
) -> Tensor:
    """`gathered_attend` on the fused CPU kernel (`vidslim.attention.cpu`): each group writes its rows in place."""
    covers_all = len(groups) == 1 and groups[0].identity
    out = q.new_empty(q.shape[0], q.shape[1], v.shape[-1]) if covers_all else q.new_zeros(*q.shape[:2], v.shape[-1])
    for group in groups:
        rows = _group_rows(group, k.shape[0])
        mask = _group_mask(group, rows, key_bias, q)
        q_rows = None if group.identity else group.q_index
        native_group_attend(q, k, v, out, q_rows, rows.view(group.kv_index.shape), mask, scale)
    return out


def gathered_attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    groups: Sequence[GatherGroup],
    key_bias: Tensor | None = None,
    scale: float | None = None,
) -> Tensor:
    """Block-sparse attention over packed [total, H, d] tensors -> [total, H, dv].

    Every real query must appear in exactly one group slot and see at least one unmasked key.
    """
    total, heads = q.shape[0], q.shape[1]
    dv = v.shape[-1]
    if any(g.zero_keys for g in groups):
        k = torch.cat((k, k.new_zeros(1, *k.shape[1:])))
        v = torch.cat((v, v.new_zeros(1, *v.shape[1:])))
        if key_bias is not None:
            key_bias = torch.cat((key_bias, key_bias.new_zeros(1)))
    if choose_kernel(q, k, v, key_bias) == "native":
        return _native_attend(q, k, v, groups, key_bias, scale)
    outs = [_group_attend(q, k, v, g, key_bias, scale) for g in groups]
    if len(groups) == 1 and groups[0].identity:
        return outs[0].reshape(total, heads, dv)
    dest, src = [], []
    for group, out in zip(groups, outs, strict=True):
        flat = out.reshape(-1, heads, dv)
        if group.identity:
            dest.append(torch.arange(flat.shape[0], device=q.device))
            src.append(flat)
        else:
            assert group.q_dest is not None and group.q_src is not None
            dest.append(group.q_dest)
            src.append(flat.index_select(0, group.q_src))
    result = q.new_zeros(total, heads, dv)
    return result.index_copy(0, torch.cat(dest), torch.cat(src))
