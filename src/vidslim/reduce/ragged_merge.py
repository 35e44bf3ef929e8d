"""Bipartite soft matching of packed sequences of unequal lengths, with its index tables built once on the host.

After RLT every frame (CLIP) or video (the video ViT) holds its own number of tokens, and with TempMe each one
merges its own count. The merges follow the equal-length rule of `vidslim.reduce.matching` in every sequence:
A = even full index, B = odd, after `protected` CLS tokens; each A token's best B partner by cosine similarity; the
r_i best-scoring A tokens merge; the output is [CLS | unmerged A | B] per sequence (the unmerged A tokens in their
original order with CLS tokens, else in descending score order, as ToMe's release lays them out).

Why a planner of its own: on sequences of a few dozen tokens the merge's arithmetic is tiny, and its cost is the
number of tensor ops (each a few microseconds of dispatch on a CPU, a kernel launch on a GPU) and the padding.
Everything that depends only on the lengths and the counts (which rows hold A and B tokens, where each output
slot comes from, where each sequence's outputs start) is known on the host as Python ints, so `RaggedLayout`
builds it with numpy in one pass and moves it to the device as one int64 and one bool tensor (no device sync).
The device then runs a fixed, short list of ops for any number of sequences:

    normalise -> one gather of the A and B rows -> per length group: bmm, mask padded B columns, max
    -> argsort of the best scores, then a stable sort by sequence (every sequence's A tokens in descending
    score order) -> one sort that lists the sources, then the unmerged A tokens, each in index order
    -> one gather of their packed rows, one index_copy_ into the output index -> the sources' destinations.

Length groups: the score matrix of a sequence of n tokens has about n²/4 entries, and padding every sequence to
the longest one (CLIP after RLT: a full first frame of 197 tokens next to frames of a few dozen) would compute ten
times the entries needed. The merging sequences are sorted by length and cut into groups of similar lengths, one
bmm per group; two groups are joined when the padding that costs is smaller than another group's fixed cost.

Only sequences that merge enter the matmul; one that merges nothing keeps its order (as it would alone). Ties in
score go to the lower index (stable sorts). Sources that merge into one destination are added in index order (the
equal-length path adds them in score order, so the two paths can differ in the last bit of such a sum).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from vidslim.reduce.matching import no_autocast

#: a new length group costs about as much as this many padded score entries (3 ops: a few microseconds of CPU
#: dispatch; on an accelerator a launch is worth far more entries, which cost next to nothing there)
GROUP_COST = {"cpu": 4096}
GROUP_COST_DEFAULT = 1 << 18


def _ragged_arange(lengths: np.ndarray) -> np.ndarray:
    """[0..l0), [0..l1), ... concatenated (numpy, no Python loop)."""
    total = int(lengths.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def length_groups(widths: np.ndarray, c: int, group_cost: int) -> list[tuple[int, int]]:
    """Cut `widths` (sorted longest first) into [start, end) groups: one group per power of two of the width, and a
    group joined to the one before when padding its rows to that group's width costs fewer than `group_cost`
    score entries. A loop over the (at most a dozen) powers of two, not over sequences."""
    first_a = c % 2

    def pairs(width: int) -> int:  # score entries (A tokens x B tokens) of a sequence of `width` tokens
        na = max((width - c - first_a + 1) // 2, 0)
        return na * (width - c - na)

    power = np.frexp(widths)[1]
    bounds = [0, *(np.flatnonzero(power[1:] != power[:-1]) + 1).tolist(), len(widths)]
    groups: list[tuple[int, int]] = []
    for lo, hi in itertools.pairwise(bounds):
        if groups and (hi - lo) * (pairs(int(widths[groups[-1][0]])) - pairs(int(widths[lo]))) < group_cost:
            groups[-1] = (groups[-1][0], hi)
        else:
            groups.append((lo, hi))
    return groups


@dataclasses.dataclass(frozen=True)
class Group:
    """One bmm: `rows` sequences padded to `num_a` A and `num_b` B tokens; `b_pad` [rows, 1, num_b] True on padded B
    columns, or None when no row is padded there."""

    rows: int
    num_a: int
    num_b: int
    b_pad: Tensor | None


@dataclasses.dataclass(frozen=True)
class RaggedLayout:
    """The host-built tables of one ragged merge (see the module docstring), views of one int64 and one bool tensor.

    ab: packed rows of every group's A then B tokens, row by row (padding points at row 0). The groups' score rows
    ("A positions", P of them) hold the A tokens of the merging sequences in sequence order, padding after each:
    rank [P] the sequence's rank (padding: after every sequence), so a stable sort by it groups each sequence's A
    tokens; push [P] added to that sorted order: 0 on each sequence's first r_i (its sources), P on its other A
    tokens, 2P on padding, so one ascending sort lists sources, then unmerged A tokens, by A position; rows [2P] the
    packed row of each A position (twice, for the pushed values); to_slot [P] the output slot of each A position's
    first B token; pick [K] (no CLS only) where the unmerged A tokens sit in the score order; place [R + K] where
    the chosen rows go in `index` [T' + R], which holds the host-known entries already; slot [T' + R] 0..T'-1 and
    room for the sources' slots.
    """

    ab: Tensor
    rank: Tensor
    push: Tensor
    rows: Tensor
    to_slot: Tensor
    pick: Tensor | None
    place: Tensor
    index: Tensor
    slot: Tensor
    groups: tuple[Group, ...]
    merged: int  # R
    unmerged: int  # K, the unmerged A tokens of merging sequences
    seqlens: tuple[int, ...]  # the output lengths

    @classmethod
    def build(cls, lengths: Sequence[int], merges: Sequence[int], protected: int, device: torch.device
              ) -> RaggedLayout:
        """The tables for sequences of `lengths` merging `merges` tokens each (already clamped to half their
        patches, at least one of them > 0), `protected` CLS tokens each."""
        c, first_a = protected, protected % 2
        n = np.asarray(lengths, dtype=np.int64)
        r = np.asarray(merges, dtype=np.int64)
        start = np.cumsum(n) - n
        out_n = n - r
        out_start = np.cumsum(out_n) - out_n
        out_total, merged = int(out_n.sum()), int(r.sum())
        kept_all = np.maximum((n - c - first_a + 1) // 2, 0) - r  # unmerged A tokens (of merging sequences)

        # every input token that is not an A token of a merging sequence has a slot known here
        seq = np.repeat(np.arange(len(n)), n)
        local = np.arange(int(n.sum()), dtype=np.int64) - start[seq]
        patch = (r > 0)[seq] & (local >= c)
        is_a = patch & ((local - c - first_a) % 2 == 0)
        slot = out_start[seq] + np.where(patch & ~is_a, c + kept_all[seq] + (local - c - (1 - first_a)) // 2, local)
        index = np.empty(out_total + merged, dtype=np.int64)
        index[slot[~is_a]] = np.flatnonzero(~is_a)

        # the merging sequences, longest first, in length groups (one bmm each): every row padded to its group's
        # width, its A then its B tokens
        order = np.flatnonzero(r > 0)
        order = order[np.argsort(-n[order], kind="stable")]
        s = len(order)
        nm, rm, km = n[order], r[order], kept_all[order]
        group_cost = GROUP_COST.get(torch.device(device).type, GROUP_COST_DEFAULT)
        bounds = length_groups(nm, c, group_cost)
        lo = np.asarray([g[0] for g in bounds])
        per_group = np.diff([*lo, s])
        width = np.repeat(nm[lo], per_group)
        num_a = np.maximum((width - c - first_a + 1) // 2, 0)
        span = width - c  # A + B slots of each row
        row = np.repeat(np.arange(s), span)
        slot_in_row = _ragged_arange(span)
        in_a = slot_in_row < num_a[row]
        full = np.where(in_a, c + first_a + 2 * slot_in_row, c + 1 - first_a + 2 * (slot_in_row - num_a[row]))
        ok = full < nm[row]
        ab = np.where(ok, start[order][row] + full, 0)
        a_ok, a_row = ok[in_a], row[in_a]
        b_pad = ~ok[~in_a]
        # the A positions (the score rows, P of them, in this order)
        rank = np.where(a_ok, a_row, s)
        positions = rank.size
        na_m = rm + km
        first = _ragged_arange(na_m) < np.repeat(rm, na_m)
        push = np.concatenate((np.where(first, 0, positions), np.full(positions - int(na_m.sum()), 2 * positions)))
        rows_p = ab[in_a]
        to_slot = (out_start[order] + c + km)[a_row]
        kept_from_order = c == 0  # ToMe without a class token keeps descending score order
        pick = (np.repeat(np.cumsum(na_m) - km, km) + _ragged_arange(km)) if kept_from_order else np.zeros(0, np.int64)
        kept_place = np.repeat(out_start[order] + c, km) + _ragged_arange(km)
        place = np.concatenate((out_total + np.arange(merged), kept_place))

        slot = np.arange(out_total + merged, dtype=np.int64)  # the sources' slots are filled in on the device
        tables = (ab, rank, push, np.concatenate((rows_p, rows_p)), to_slot, pick, place, index, slot)
        ints = torch.from_numpy(np.concatenate(tables)).to(device, non_blocking=True)
        parts = ints.split([t.size for t in tables])
        flags = torch.from_numpy(b_pad).to(device, non_blocking=True)
        groups, used = [], 0
        for (g_lo, g_hi), g_na, g_width in zip(bounds, num_a[lo].tolist(), nm[lo].tolist(), strict=True):
            rows, g_nb = g_hi - g_lo, g_width - c - g_na
            pad = flags[used : used + rows * g_nb].view(rows, 1, g_nb)
            used += rows * g_nb
            # rows are longest first: only the last can lack B tokens of the group's width
            short = int(nm[g_hi - 1]) - c - max((int(nm[g_hi - 1]) - c - first_a + 1) // 2, 0) < g_nb
            groups.append(Group(rows, g_na, g_nb, pad if short else None))
        return cls(
            ab=parts[0], rank=parts[1], push=parts[2], rows=parts[3], to_slot=parts[4],
            pick=parts[5] if kept_from_order else None, place=parts[6], index=parts[7], slot=parts[8],
            groups=tuple(groups),
            merged=merged, unmerged=int(km.sum()), seqlens=tuple(int(m) for m in out_n),
        )


def ragged_match(metric: Tensor, layout: RaggedLayout) -> tuple[Tensor, Tensor]:
    """Match packed `metric` [total, C] by `layout`: (index [T' + R], slot [T' + R]) of a `MergePlan`: index[:T']
    the input row holding each output slot, index[T':] the merged-away rows, slot[T':] the slot each joins
    (slot[:T'] = 0..T'-1). A layout serves one call: its `index` and `slot` are filled in place."""
    lay, merged = layout, layout.merged
    if metric.requires_grad:  # the plan is indices: nothing here is differentiated
        metric = metric.detach()
    with no_autocast(metric):
        unit = metric if metric.dtype == torch.float32 else metric.float()
        unit = unit / torch.linalg.vector_norm(unit, dim=-1, keepdim=True)
        ab = unit.index_select(0, lay.ab)
        best_parts, partner_parts, used = [], [], 0
        for g in lay.groups:
            rows = ab[used : used + g.rows * (g.num_a + g.num_b)].view(g.rows, g.num_a + g.num_b, -1)
            used += g.rows * (g.num_a + g.num_b)
            scores = torch.bmm(rows[:, : g.num_a], rows[:, g.num_a :].transpose(1, 2))
            if g.b_pad is not None:
                scores.masked_fill_(g.b_pad, float("-inf"))
            best, partner = scores.max(dim=-1)
            best_parts.append(best.view(-1))
            partner_parts.append(partner.view(-1))
        best = best_parts[0] if len(best_parts) == 1 else torch.cat(best_parts)
        partner = partner_parts[0] if len(partner_parts) == 1 else torch.cat(partner_parts)
        by_score = best.argsort(descending=True, stable=True)
        by_sequence = by_score.index_select(0, lay.rank.index_select(0, by_score).argsort(stable=True))
        # sources (each sequence's first r_i), then its other A tokens, then padding; each by A position
        listed = (by_sequence + lay.push).sort().values
        chosen = listed[: merged + lay.unmerged] if lay.pick is None else torch.cat(
            (listed[:merged], by_sequence.index_select(0, lay.pick)))
        index = lay.index.index_copy_(0, lay.place, lay.rows.index_select(0, chosen))
        slot = lay.slot
        torch.index_select(partner + lay.to_slot, 0, listed[:merged], out=slot[slot.shape[0] - merged :])
    return index, slot
