"""Gathered block-sparse attention: each query block attends to a short list of key slots, in one SDPA call.

A block-sparse pattern (SViTT's local + random blocks, say) is given as index tables over the packed rows:

    q_index  [R, bq]  the packed row of every query of each of R query blocks (-1: an empty slot)
    kv_index [R, K]   the packed rows of the K keys that block may see (-1: masked; ZERO_KEY: a zero key and
                      zero value that is *not* masked, to reproduce the SViTT release's unmasked padding)

The keys of every block are gathered with one `index_select` into [R, K, H, d] and all blocks run as one
batched `F.scaled_dot_product_attention` call of R x H rows of bq queries by K keys: no Python loop over
blocks (the SViTT release loops over query blocks), the fused CPU/GPU SDPA kernels, and a backward pass.
Masked slots (empty key slots, padding past the end of a video) get -inf through the additive mask, which
is left out entirely when every slot is a real key and there is no key bias.

Measured on the 2-core CPU this was developed on (benchmarks/svitt_speed.py: ViT-B heads, 1568 tokens, blocks
of 56, 4 of 28 key blocks per query, 1/7 of the pairs): 4.5-4.9x faster than dense SDPA, single-threaded. The
CPU SDPA kernel runs these 56 x 224 tiles at ~0.75 of its FLOP rate on the full 1568 x 1568 problem (it cuts
queries into 32-row chunks), and the gathers cost another ~10 % of the sparse time.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

#: kv_index value of a slot holding a zero key and value that is not masked (release parity, see module doc)
ZERO_KEY = -2

_local = threading.local()


def _gather_rows(t: Tensor, rows: Tensor, slot: str) -> Tensor:
    """t.index_select(0, rows); on CPU without autograd, into a per-thread buffer that is reused across calls.

    The gathered keys and values are 1 + random times the size of k and v (tens of MB for ViT-B video). A fresh
    buffer of that size is paged in from the OS on every call (glibc maps allocations this large anew each
    time), which measured ~15 ms per call for 1568 tokens, as long as the attention itself; the reused
    buffer is paged in once. `release_workspace()` frees it.
    """
    if t.device.type != "cpu" or (torch.is_grad_enabled() and t.requires_grad):
        return t.index_select(0, rows)
    shape = (rows.shape[0], *t.shape[1:])
    numel = math.prod(shape)
    buffers: dict[tuple[str, torch.dtype], Tensor] = getattr(_local, "buffers", None) or {}
    _local.buffers = buffers
    buffer = buffers.get((slot, t.dtype))
    if buffer is None or buffer.numel() < numel:
        with torch.inference_mode(False):  # a normal tensor, writable both inside and outside inference mode
            buffer = torch.empty(numel, dtype=t.dtype)
        buffers[(slot, t.dtype)] = buffer
    return torch.index_select(t, 0, rows, out=buffer[:numel].view(shape))


def release_workspace() -> None:
    """Free this thread's reusable gather buffers (see `_gather_rows`)."""
    _local.buffers = {}


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


def _group_attend(
    q: Tensor, k: Tensor, v: Tensor, group: GatherGroup, key_bias: Tensor | None, scale: float | None
) -> Tensor:
    """Attention of one group -> [R, bq, H, dv] (k, v, key_bias already extended by a zero row if needed)."""
    r, bq = group.q_index.shape
    kk = group.kv_index.shape[1]
    heads, d = q.shape[1], q.shape[2]
    if group.identity:
        qg = q.reshape(r, bq, heads, d)
    else:
        qg = q.index_select(0, group.q_index.reshape(-1).clamp_min(0)).view(r, bq, heads, d)
    rows = group.kv_rows if group.kv_rows is not None else group.kv_index.clamp_min(0).reshape(-1)
    if group.zero_keys:
        rows = torch.remainder(rows, k.shape[0])  # -1 -> the zero row appended last
    kg = _gather_rows(k, rows, "k").view(r, kk, heads, d)
    vg = _gather_rows(v, rows, "v").view(r, kk, heads, v.shape[-1])
    mask = None
    if not group.all_valid or key_bias is not None:
        bias = key_bias.to(q.dtype)[rows].view(r, kk) if key_bias is not None else q.new_zeros(r, kk)
        bias = bias.masked_fill(group.kv_index == -1, float("-inf"))
        mask = bias[:, None, None, :]
    out = F.scaled_dot_product_attention(
        qg.transpose(1, 2), kg.transpose(1, 2), vg.transpose(1, 2), attn_mask=mask, scale=scale
    )
    return out.transpose(1, 2)


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
