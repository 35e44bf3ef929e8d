"""One bipartite-soft-matching merge applied to packed `Tokens`: features, sizes, positions, and where each went.

`merge_tokens(tokens, metric, r, protected)` is the step ToMe runs after attention and TempMe runs before and
after it (spec tempme §5, §1.11). Features are averaged weighted by size, sizes add up, a merged token keeps the
grid position of its destination, and the CLS tokens (the `protected` first tokens of every sequence) stay at
the head, untouched.

Planning, two paths with the same merges:
- equal lengths (every CLIP/TempMe layer, a dense video ViT): `[S, N, C]` views and `vidslim.reduce.matching`;
- unequal lengths (a packed batch after RLT, say), or unequal counts: the metric is padded to the longest
  sequence, padded rows and columns score -inf so a padded token is never matched, sequence i merges
  min(r_i, half its patches) tokens, and every token's output slot is computed with the same A/B parity, ordering
  and output layout as the equal-length path. No loop over sequences either way.

`r` is one count for every sequence or one per sequence (a list of Python ints, e.g. TempMe's counts scaled to
each frame's length): the counts decide the output layout, so they are known on the host and never read back
from the device.

Applying (`MergePlan.apply`), one way for both: every output slot is held by one input token (a CLS, an unmerged
A token or a B token), so the output is one row gather of the input, and only the r merged-away rows per
sequence are added on top, weighted: out[d] = x[d]·s[d]/S + Σ x[i]·s[i]/S over the sources i of d, S the new
size. Two passes over the features plus work on the merged rows, instead of weighting, scattering and
dividing every row; the weights are fractions, so nothing overflows in fp16 (spec §6.2-6) and untouched rows
are copied exactly. Sizes are kept in float32 (bf16 cannot count past 256 exactly).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor

from vidslim.errors import TokenLayoutError
from vidslim.reduce.matching import Merge, bipartite_soft_matching, max_merges, no_autocast
from vidslim.tokens import Tokens


@dataclasses.dataclass(frozen=True)
class MergePlan:
    """Where every token goes, as packed indices: `keep` [T'] the input token holding each output slot, `src` [R]
    the merged-away input tokens and `src_slot` [R] the slot each merges into; `seqlens` the output layout."""

    keep: Tensor
    src: Tensor
    src_slot: Tensor
    seqlens: tuple[int, ...]

    def destinations(self, total: int) -> Tensor:
        """[total] the output slot of every input token (for source tracing)."""
        out = torch.empty(total, dtype=torch.long, device=self.keep.device)
        out[self.keep] = torch.arange(self.keep.shape[0], device=self.keep.device)
        out[self.src] = self.src_slot
        return out

    def apply(self, tokens: Tokens) -> Tokens:
        """The merged tokens: size-weighted average features, summed sizes, the holders' positions."""
        size = tokens.size.float() if tokens.size is not None else None
        x = tokens.x.index_select(0, self.keep)
        if size is None:  # every size is 1
            kept_size = torch.ones(self.keep.shape[0], device=x.device)
            src_size = torch.ones(self.src.shape[0], device=x.device)
        else:
            kept_size, src_size = size.index_select(0, self.keep), size.index_select(0, self.src)
        new_size = kept_size.index_add(0, self.src_slot, src_size)
        x = x.mul_((kept_size / new_size).to(x.dtype)[:, None])
        weight = (src_size / new_size.index_select(0, self.src_slot)).to(x.dtype)[:, None]
        x = x.index_add_(0, self.src_slot, tokens.x.index_select(0, self.src) * weight)
        pos = tokens.pos.index_select(0, self.keep) if tokens.pos is not None else None
        return Tokens(x, self.seqlens, pos, new_size)


MergeCounts = int | Sequence[int]


def sequence_merges(r: MergeCounts, seqlens: Sequence[int], protected: int) -> list[int]:
    """The merges of every sequence: r (one int, or one per sequence), at least 0 and at most half its patches."""
    counts = [int(m) for m in r] if isinstance(r, Sequence) else [int(r)] * len(seqlens)
    if len(counts) != len(seqlens):
        raise TokenLayoutError(f"{len(counts)} merge counts for {len(seqlens)} sequences: give one per sequence")
    return [max(0, min(m, max_merges(n, protected))) for m, n in zip(counts, seqlens, strict=True)]


def merge_tokens(
    tokens: Tokens, metric: Tensor, r: MergeCounts, protected: int, want_destinations: bool = False
) -> tuple[Tokens, Tensor | None]:
    """Merge r tokens per sequence (r: one int, or one int per sequence; fewer where a sequence has fewer than 2r
    patches) by similarity of `metric` [total, C]. Returns the merged tokens and, with `want_destinations`, the
    new packed index of every input token ([total] int64, for source tracing)."""
    if metric.shape[0] != tokens.total:
        raise TokenLayoutError(f"merge metric has {metric.shape[0]} rows for {tokens.total} tokens")
    if min(tokens.seqlens, default=0) < protected:
        raise TokenLayoutError(f"a sequence of {min(tokens.seqlens)} tokens cannot hold {protected} CLS tokens")
    counts = sequence_merges(r, tokens.seqlens, protected)
    if not any(counts):
        return tokens, (torch.arange(tokens.total, device=tokens.x.device) if want_destinations else None)
    plan = plan_merge(tokens, metric, counts, protected)
    return plan.apply(tokens), (plan.destinations(tokens.total) if want_destinations else None)


def plan_merge(tokens: Tokens, metric: Tensor, r: MergeCounts, protected: int) -> MergePlan:
    """The merge plan of `merge_tokens` (the equal-length path when lengths and counts are equal, else the packed
    one)."""
    counts = sequence_merges(r, tokens.seqlens, protected)
    if tokens.is_uniform and len(set(counts)) <= 1:
        s, n = tokens.batch_size, tokens.max_seqlen
        return uniform_plan(bipartite_soft_matching(metric.view(s, n, -1), counts[0] if counts else 0, protected), s, n)
    return packed_plan(tokens, metric, counts, protected)


def packed_plan(tokens: Tokens, metric: Tensor, r: MergeCounts, protected: int) -> MergePlan:
    """The plan of sequences of any lengths, from `packed_destinations`."""
    destination, is_source, seqlens = packed_destinations(tokens, metric, r, protected)
    device, out_total = destination.device, sum(seqlens)
    merged = tokens.total - out_total  # known on the host: the lists below need no nonzero (no device sync)
    index = torch.arange(tokens.total, device=device)
    # holders write their slot, sources a spare last slot that is dropped
    keep = torch.empty(out_total + 1, dtype=torch.long, device=device)
    keep.index_put_((torch.where(is_source, out_total, destination),), index)
    # sources in packed order: the k-th source goes to row k, the others to a spare last row
    rank = torch.where(is_source, torch.cumsum(is_source, 0) - 1, merged)
    src = torch.empty(merged + 1, dtype=torch.long, device=device).index_put_((rank,), index)
    src_slot = torch.empty(merged + 1, dtype=torch.long, device=device).index_put_((rank,), destination)
    return MergePlan(keep[:out_total], src[:merged], src_slot[:merged], seqlens)


def uniform_plan(merge: Merge, sequences: int, length: int) -> MergePlan:
    """Flatten a `Merge` of S sequences of N tokens into packed indices."""
    device, c = merge.src_idx.device, merge.protected
    first_a = c % 2
    num_b = (length - c) - (length - c + 1 - first_a) // 2
    kept_a, out = merge.unmerged_idx.shape[1], length - merge.r
    a_full = c + first_a + 2 * merge.unmerged_idx[..., 0]  # [S, Na - r] full index inside the sequence
    b_full = (c + 1 - first_a + 2 * torch.arange(num_b, device=device)).expand(sequences, -1)
    cls = torch.arange(c, device=device).expand(sequences, -1)
    rows = torch.arange(sequences, device=device)[:, None]
    keep = torch.cat((cls, a_full, b_full), dim=1) + rows * length
    src = c + first_a + 2 * merge.src_idx[..., 0] + rows * length
    src_slot = c + kept_a + merge.dst_idx[..., 0] + rows * out
    return MergePlan(keep.reshape(-1), src.reshape(-1), src_slot.reshape(-1), (out,) * sequences)


def _merge_packed(
    tokens: Tokens, metric: Tensor, r: MergeCounts, protected: int, want_destinations: bool
) -> tuple[Tokens, Tensor | None]:
    """The packed path even for equal lengths (tests compare it with the equal-length path)."""
    plan = packed_plan(tokens, metric, r, protected)
    return plan.apply(tokens), (plan.destinations(tokens.total) if want_destinations else None)


def packed_destinations(
    tokens: Tokens, metric: Tensor, r: MergeCounts, protected: int
) -> tuple[Tensor, Tensor, tuple[int, ...]]:
    """Plan a merge of packed sequences of any lengths, r merges each (one int, or one per sequence; clamped to half
    the patches): (destination [total] int64 packed output index of every token, is_source [total] bool, output
    seqlens). Same matching, parity and layout as `matching.py`."""
    device, c = metric.device, protected
    lengths = list(tokens.seqlens)
    merges = sequence_merges(r, lengths, c)  # per sequence, in Python: no device sync
    out_lengths = tuple(n - m for n, m in zip(lengths, merges, strict=True))
    n = torch.tensor(lengths, device=device)
    r_seq = torch.tensor(merges, device=device)
    width = tokens.max_seqlen
    first_a = c % 2
    with torch.no_grad(), no_autocast(metric):
        unit = metric.float()
        unit = tokens.pad_values(unit / unit.norm(dim=-1, keepdim=True))  # [S, L, C], zeros past each length
        a, b = unit[:, c + first_a :: 2], unit[:, c + 1 - first_a :: 2]
        a_index = c + first_a + 2 * torch.arange(a.shape[1], device=device)  # full index of A slot i
        b_index = c + 1 - first_a + 2 * torch.arange(b.shape[1], device=device)
        a_valid, b_valid = a_index[None] < n[:, None], b_index[None] < n[:, None]
        scores = (a @ b.transpose(-1, -2)).masked_fill(~b_valid[:, None, :], float("-inf"))
        best, best_b = scores.max(dim=-1) if b.shape[1] else (a.new_full(a.shape[:2], float("-inf")), None)
        best = best.masked_fill(~a_valid, float("-inf"))
        order = best.argsort(dim=-1, descending=True)
        rank = torch.empty_like(order).scatter_(1, order, torch.arange(order.shape[1], device=device).expand_as(order))
        is_src = (rank < r_seq[:, None]) & a_valid
        kept = a_valid.sum(1) - r_seq  # unmerged A tokens per sequence
        # unmerged A tokens: in their original order with CLS tokens (TempMe, ToMe with a class token), else in
        # descending score order (ToMe without a class token)
        in_order = torch.cumsum((~is_src & a_valid).long(), dim=1) - 1
        a_slot = c + (in_order if c > 0 else rank - r_seq[:, None])
        b_slot = c + kept[:, None] + torch.arange(b.shape[1], device=device)
        if best_b is not None:
            a_slot = torch.where(is_src, b_slot.gather(1, best_b), a_slot)
        slot = torch.zeros(len(lengths), width, dtype=torch.long, device=device)
        slot[:, :c] = torch.arange(c, device=device)
        slot[:, c + first_a :: 2] = a_slot
        slot[:, c + 1 - first_a :: 2] = b_slot
        # a sequence too short to merge keeps its order, as it would alone (merge_tokens leaves it untouched)
        slot = torch.where(r_seq[:, None] > 0, slot, torch.arange(width, device=device))
        source = torch.zeros(len(lengths), width, dtype=torch.bool, device=device)
        source[:, c + first_a :: 2] = is_src
        out_start = torch.tensor([0, *out_lengths[:-1]], device=device).cumsum(0)
        rows = tokens.padded_index  # padded [S, L] -> packed, without a bool mask (no device sync)
        destination = (slot + out_start[:, None]).view(-1).index_select(0, rows)
    return destination, source.view(-1).index_select(0, rows), out_lengths
