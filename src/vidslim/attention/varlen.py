"""Variable-length (block-diagonal) attention by length buckets: dense SDPA calls with as little padding as pays.

Videos of a packed batch are sorted by length and cut into buckets; each bucket runs one dense SDPA call,
padded to its longest video. Where to cut is chosen by a small dynamic program over a cost model:

    cost(bucket of b videos, longest L) = CALL + b * L^2 * channels * PAIR  (+ gather copies if padded)

so videos of equal length share one call (a view of the packed tensor when they sit next to each other:
no copy, no mask), many short videos share one padded call (the fixed cost of a call outweighs their
padding), and long videos of different lengths each get their own call (padding them would cost more
than a call). The constants were measured with fp32 SDPA on the 2-core CPU this library was developed on
(see benchmarks/attention.py); they only decide where to cut, never what is computed.

Why not one kernel (benchmarks/attention.py times each on videos of very different lengths; figures in
BENCHMARKS.md, "Packed variable-length attention"): one padded SDPA call does B*L_max^2 work; nested (jagged)
tensor SDPA is far slower (and fails under inference_mode); compiled FlexAttention with a document mask is
slower and has no CPU backward (it remains available as `backend="flex"`). A
Python loop of one SDPA call per video is as fast as the buckets on long videos, and the buckets become
exactly that when the cost model says so, while still merging short or equal-length videos.

The plan (buckets, gather and scatter indices) depends only on the lengths, so it is built once per
distinct `seqlens` and cached: the blocks of one forward pass share it.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from vidslim.attention.bias import additive_mask
from vidslim.attention.sparse import AttentionPattern
from vidslim.tokens.kept_tensors import kept_across_calls

#: seconds per (query, key) pair per channel (heads * head_dim) of fp32 CPU SDPA
PAIR_COST = 2.2e-11
#: seconds per element gathered into a padded bucket (q, k, v in, output back)
COPY_COST = 1.5e-10
#: fixed seconds per SDPA call (Python, dispatch, index and mask building)
CALL_COST = 5e-5


def plan_buckets(seqlens: Sequence[int], channels: int = 768) -> list[list[int]]:
    """Group videos (indices into seqlens) into buckets of similar length, minimising the cost model.

    Zero-length videos are left out. Within a bucket, videos are in increasing (length, index) order.
    """
    order = sorted((i for i, n in enumerate(seqlens) if n > 0), key=lambda i: (seqlens[i], i))
    lens = [seqlens[i] for i in order]
    m = len(order)
    best = [0.0] + [float("inf")] * m  # best[j]: cheapest cost of the first j sorted videos
    cut = [0] * (m + 1)
    for j in range(1, m + 1):
        width = lens[j - 1]
        pair = width * width * channels * PAIR_COST
        for i in range(j - 1, -1, -1):
            # the leftmost (shortest) video wastes more by being padded than a call of its own costs:
            # every larger bucket would too (see the module docstring), so stop extending to the left
            if (width * width - lens[i] * lens[i]) * channels * PAIR_COST > CALL_COST:
                break
            b = j - i
            # a run of equal lengths that sit next to each other in the batch is read as a view
            view = lens[i] == width and order[j - 1] - order[i] == b - 1
            copy = 0.0 if view else 4 * b * width * channels * COPY_COST
            cost = best[i] + CALL_COST + b * pair + copy
            if cost < best[j]:
                best[j], cut[j] = cost, i
    buckets: list[list[int]] = []
    j = m
    while j > 0:
        buckets.append(order[cut[j] : j])
        j = cut[j]
    buckets.sort(key=lambda bucket: min(bucket))  # packed order where possible: cheap reassembly
    return buckets


@dataclasses.dataclass(frozen=True)
class Bucket:
    """One SDPA call: `batch` videos padded to `width` tokens.

    start:    packed offset when the bucket is a run of adjacent equal-length videos (read as a view)
    gather:   [batch*width] packed rows to read otherwise (padded slots repeat a real row)
    lengths:  [batch] int64 lengths, when some video is shorter than width (else None: no mask needed)
    """

    batch: int
    width: int
    start: int | None
    gather: Tensor | None
    lengths: Tensor | None


@dataclasses.dataclass(frozen=True)
class VarlenPlan:
    """Buckets of one `seqlens`, and `out_index` [total]: the row of the concatenated bucket outputs that
    holds each packed token (None when the concatenation is already in packed order)."""

    buckets: tuple[Bucket, ...]
    out_index: Tensor | None


@functools.lru_cache(maxsize=64)
@kept_across_calls
def varlen_plan(seqlens: tuple[int, ...], channels: int, device: torch.device) -> VarlenPlan:
    """Build (and cache) the bucket plan for these lengths on this device."""
    offsets = [0]
    for n in seqlens:
        offsets.append(offsets[-1] + n)
    buckets: list[Bucket] = []
    out_index: list[int] = [0] * offsets[-1]
    identity = True
    row = 0  # rows of the concatenated bucket outputs so far
    for videos in plan_buckets(seqlens, channels):
        width = max(seqlens[i] for i in videos)
        equal = all(seqlens[i] == width for i in videos)
        adjacent = all(b == a + 1 for a, b in itertools.pairwise(videos))
        if equal and adjacent:
            start = offsets[videos[0]]
            buckets.append(Bucket(len(videos), width, start, None, None))
            identity = identity and start == row
        else:
            identity = False
            gather = []
            for i in videos:
                n, first = seqlens[i], offsets[i]
                gather.extend(range(first, first + n))
                gather.extend([first + n - 1] * (width - n))  # any real row: these keys are masked
            lengths = None if equal else torch.tensor([seqlens[i] for i in videos], device=device)
            buckets.append(Bucket(len(videos), width, None, torch.tensor(gather, device=device), lengths))
        for slot, i in enumerate(videos):
            base = row + slot * width
            out_index[offsets[i] : offsets[i] + seqlens[i]] = range(base, base + seqlens[i])
        row += len(videos) * width
    index = None if identity else torch.tensor(out_index, dtype=torch.int64, device=device)
    return VarlenPlan(tuple(buckets), index)


def varlen_attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    seqlens: Sequence[int],
    key_bias: Tensor | None = None,
    scale: float | None = None,
    pattern: AttentionPattern | None = None,
) -> Tensor:
    """Block-diagonal attention over packed [total, H, d] tensors of unequal lengths -> [total, H, d_v]."""
    total, heads, head_dim = q.shape
    dv = v.shape[-1]
    if total == 0:
        return q.new_empty(0, heads, dv)
    plan = varlen_plan(tuple(seqlens), heads * head_dim, q.device)
    outs = []
    for bucket in plan.buckets:
        b, width = bucket.batch, bucket.width
        if bucket.start is not None:
            rows = slice(bucket.start, bucket.start + b * width)
            qb, kb, vb = (t[rows].view(b, width, heads, t.shape[-1]).transpose(1, 2) for t in (q, k, v))
            bias = key_bias[rows].view(b, 1, 1, width) if key_bias is not None else None
            allowed = pattern.dense_mask(width, q.device)[None, None] if pattern is not None else None
        else:
            assert bucket.gather is not None
            qb, kb, vb = (
                t.index_select(0, bucket.gather).view(b, width, heads, t.shape[-1]).transpose(1, 2)
                for t in (q, k, v)
            )
            bias = key_bias.index_select(0, bucket.gather).view(b, 1, 1, width) if key_bias is not None else None
            allowed = _bucket_mask(bucket, pattern, q.device)
        mask = additive_mask(allowed, bias, q.dtype)
        out = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask, scale=scale)
        outs.append(out.transpose(1, 2).reshape(b * width, heads, dv))
    out = torch.cat(outs) if len(outs) > 1 else outs[0]
    return out if plan.out_index is None else out.index_select(0, plan.out_index)


def _bucket_mask(bucket: Bucket, pattern: AttentionPattern | None, device: torch.device) -> Tensor | None:
    """Boolean mask [b, 1, L or 1, L] of a gathered bucket: real keys only, and the pattern if any."""
    width = bucket.width
    if bucket.lengths is None:  # equal lengths, gathered because not adjacent
        return pattern.dense_mask(width, device)[None, None] if pattern is not None else None
    if pattern is not None:
        return pattern.padded_mask(bucket.lengths, width)[:, None]
    return (torch.arange(width, device=device)[None, :] < bucket.lengths[:, None])[:, None, None, :]
