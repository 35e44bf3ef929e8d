"""One bipartite-soft-matching merge applied to packed `Tokens`: features, sizes, positions, and where each went.

`merge_tokens(tokens, metric, r, protected)` is the step ToMe runs after attention and TempMe runs before and
after it (spec tempme §5, §1.11). Features are averaged weighted by size, sizes add up, a merged token keeps the
grid position of its destination, and the CLS tokens (the `protected` first tokens of every sequence) stay at
the head, untouched.

Planning, two paths with the same merges:
- equal lengths (every CLIP/TempMe layer, a dense video ViT): `[S, N, C]` views and `vidslim.reduce.matching`;
- unequal lengths (a packed batch after RLT, say), or unequal counts: `vidslim.reduce.ragged_merge`, where
  sequence i merges min(r_i, half its patches) tokens with the same A/B parity, ordering and output layout as the
  equal-length path; its index tables come from the lengths alone, built on the host. No loop over sequences
  either way.

Layouts built ahead (`LayoutCache`, `merge_steps`): a reducer that knows its later merges from the lengths (ToMe,
TempMe) builds the index tables of all of them in one burst at its first ragged merge of a forward, and each merge
takes its own; one whose lengths or counts differ from the plan builds its tables when it comes.

`r` is one count for every sequence or one per sequence (a list of Python ints, e.g. TempMe's counts scaled to
each frame's length): the counts decide the output layout, so they are known on the host and never read back
from the device.

Applying (`MergePlan.apply`), one way for both: every output slot is held by one input token (a CLS, an unmerged
A token or a B token), so the output is one row gather of the input (together with the merged-away rows, in one
index), every gathered row is scaled by its share of its slot's new size, and the r merged-away rows per sequence
are added on top: out[d] = x[d]·s[d]/S + Σ x[i]·s[i]/S over the sources i of d, S the new size. The weights are
fractions, so nothing overflows in fp16 (spec §6.2-6) and untouched rows are copied exactly. Sizes are kept in
float32 (bf16 cannot count past 256 exactly).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor

from vidslim.errors import TokenLayoutError
from vidslim.reduce.matching import Merge, bipartite_soft_matching, max_merges
from vidslim.reduce.ragged_merge import RaggedLayout, ragged_match
from vidslim.tokens import Tokens


@dataclasses.dataclass(frozen=True)
class MergePlan:
    """Where every token goes, as packed indices over the T' output slots and the R merged-away tokens: `index`
    [T' + R] the input token holding each output slot, then the merged-away input tokens; `slot` [T' + R] the
    output slot each of them adds into (0..T'-1, then the merged-away tokens' destinations); `seqlens` the output
    layout. One index for all of them, so features and sizes are gathered once and weighted in one pass."""

    index: Tensor
    slot: Tensor
    seqlens: tuple[int, ...]

    @property
    def out_total(self) -> int:
        return sum(self.seqlens)

    @property
    def merged(self) -> int:
        return self.index.shape[0] - self.out_total

    @property
    def keep(self) -> Tensor:
        """[T'] the input token holding each output slot."""
        return self.index[: self.out_total]

    @property
    def src(self) -> Tensor:
        """[R] the merged-away input tokens."""
        return self.index[self.out_total :]

    @property
    def src_slot(self) -> Tensor:
        """[R] the output slot each merged-away token adds into."""
        return self.slot[self.out_total :]

    def destinations(self, total: int) -> Tensor:
        """[total] the output slot of every input token (for source tracing)."""
        return torch.empty(total, dtype=torch.long, device=self.index.device).index_put_((self.index,), self.slot)

    def apply(self, tokens: Tokens) -> Tokens:
        """The merged tokens: size-weighted average features, summed sizes, the holders' positions.

        out[d] = x[d]·s[d]/S + Σ x[i]·s[i]/S over the tokens i merged into d, S = s[d] + Σ s[i]: every gathered
        row is scaled by its own fraction s/S of its slot's new size, then the merged-away rows are added on."""
        kept = self.out_total
        x_all = tokens.x.index_select(0, self.index)
        if tokens.size is None:  # every size is 1
            size_all = torch.ones(self.index.shape[0], device=x_all.device)
        else:
            size_all = tokens.size.float().index_select(0, self.index)
        src_slot = self.slot[kept:]
        new_size = size_all[:kept].index_add(0, src_slot, size_all[kept:])
        fraction = size_all / new_size.index_select(0, self.slot)
        x_all.mul_((fraction if x_all.dtype == torch.float32 else fraction.to(x_all.dtype)).unsqueeze(1))
        src_rows = x_all[kept:]
        if src_rows.requires_grad:  # autograd keeps the added rows; they must not share the storage written to
            src_rows = src_rows.clone()
        x = x_all[:kept].index_add_(0, src_slot, src_rows)
        pos = tokens.pos.index_select(0, self.index[:kept]) if tokens.pos is not None else None
        return Tokens(x, self.seqlens, pos, new_size)


MergeCounts = int | Sequence[int]


def sequence_merges(r: MergeCounts, seqlens: Sequence[int], protected: int) -> list[int]:
    """The merges of every sequence: r (one int, or one per sequence), at least 0 and at most half its patches."""
    counts = [int(m) for m in r] if isinstance(r, Sequence) else [int(r)] * len(seqlens)
    if len(counts) != len(seqlens):
        raise TokenLayoutError(f"{len(counts)} merge counts for {len(seqlens)} sequences: give one per sequence")
    return [max(0, min(m, max_merges(n, protected))) for m, n in zip(counts, seqlens, strict=True)]


class LayoutCache:
    """Ragged layouts built ahead, in one burst, for the merges a reducer expects to make later in this forward.

    A layer's matrix products leave the caches cold, and the host-side index building of a merge (numpy and Python)
    runs several times slower then than right after another one; building every layer's layout back to back at the
    first merge pays that once per forward. A layout is only used for exactly the lengths, counts and CLS count it
    was built for (anything else is built when it comes), and only once. Keep one per forward, never longer.
    """

    def __init__(self) -> None:
        self._ready: dict[tuple[tuple[int, ...], tuple[int, ...], int], RaggedLayout] = {}

    def prepare(self, steps: Sequence[MergeStep], device: torch.device) -> None:
        """Build the layouts of `steps` ((seqlens, clamped counts, protected) each, from `merge_steps`)."""
        for seqlens, counts, protected in steps:
            key = (tuple(seqlens), tuple(counts), protected)
            if key not in self._ready:
                self._ready[key] = RaggedLayout.build(seqlens, counts, protected, device)

    def take(self, seqlens: tuple[int, ...], counts: list[int], protected: int) -> RaggedLayout | None:
        """The layout built for these lengths and counts, once; None when none was."""
        return self._ready.pop((seqlens, tuple(counts), protected), None)


MergeStep = tuple[tuple[int, ...], list[int], int]


def next_merge(seqlens: tuple[int, ...], r: MergeCounts, protected: int) -> tuple[MergeStep | None, tuple[int, ...]]:
    """What `merge_tokens` does with counts r on sequences of `seqlens`: (the step (lengths, clamped counts,
    protected) when it takes the packed path, else None; the lengths after it)."""
    counts = sequence_merges(r, seqlens, protected)
    if not any(counts):
        return None, seqlens
    step = (seqlens, counts, protected) if len(set(seqlens)) > 1 or len(set(counts)) > 1 else None
    return step, tuple(n - m for n, m in zip(seqlens, counts, strict=True))


def merge_steps(seqlens: Sequence[int], rounds: Sequence[MergeCounts], protected: int) -> list[MergeStep]:
    """The packed-path merges that `rounds` of merge counts (one entry per merge, as `merge_tokens` takes them) make
    on sequences of `seqlens`, in order (`next_merge`)."""
    steps: list[MergeStep] = []
    lengths = tuple(int(n) for n in seqlens)
    for r in rounds:
        step, lengths = next_merge(lengths, r, protected)
        if step is not None:
            steps.append(step)
    return steps


def merge_tokens(
    tokens: Tokens, metric: Tensor, r: MergeCounts, protected: int, want_destinations: bool = False,
    layouts: LayoutCache | None = None,
) -> tuple[Tokens, Tensor | None]:
    """Merge r tokens per sequence (r: one int, or one int per sequence; fewer where a sequence has fewer than 2r
    patches) by similarity of `metric` [total, C]. Returns the merged tokens and, with `want_destinations`, the
    new packed index of every input token ([total] int64, for source tracing). `layouts`: ragged layouts built
    ahead for this forward (`LayoutCache`)."""
    if metric.shape[0] != tokens.total:
        raise TokenLayoutError(f"merge metric has {metric.shape[0]} rows for {tokens.total} tokens")
    if min(tokens.seqlens, default=0) < protected:
        raise TokenLayoutError(f"a sequence of {min(tokens.seqlens)} tokens cannot hold {protected} CLS tokens")
    counts = sequence_merges(r, tokens.seqlens, protected)
    if not any(counts):
        return tokens, (torch.arange(tokens.total, device=tokens.x.device) if want_destinations else None)
    plan = _plan(tokens, metric, counts, protected, layouts)
    return plan.apply(tokens), (plan.destinations(tokens.total) if want_destinations else None)


def plan_merge(
    tokens: Tokens, metric: Tensor, r: MergeCounts, protected: int, layouts: LayoutCache | None = None
) -> MergePlan:
    """The merge plan of `merge_tokens` (the equal-length path when lengths and counts are equal, else the packed
    one)."""
    return _plan(tokens, metric, sequence_merges(r, tokens.seqlens, protected), protected, layouts)


def packed_plan(
    tokens: Tokens, metric: Tensor, r: MergeCounts, protected: int, layouts: LayoutCache | None = None
) -> MergePlan:
    """The plan of sequences of any lengths (`vidslim.reduce.ragged_merge`: index tables built on the host)."""
    return _packed(tokens, metric, sequence_merges(r, tokens.seqlens, protected), protected, layouts)


def _plan(tokens: Tokens, metric: Tensor, counts: list[int], protected: int, layouts: LayoutCache | None) -> MergePlan:
    """`plan_merge` of counts already clamped by `sequence_merges`."""
    if tokens.is_uniform and len(set(counts)) <= 1:
        s, n = tokens.batch_size, tokens.max_seqlen
        return uniform_plan(bipartite_soft_matching(metric.view(s, n, -1), counts[0] if counts else 0, protected), s, n)
    return _packed(tokens, metric, counts, protected, layouts)


def _packed(
    tokens: Tokens, metric: Tensor, counts: list[int], protected: int, layouts: LayoutCache | None
) -> MergePlan:
    """`packed_plan` of counts already clamped by `sequence_merges`."""
    if not any(counts):  # nothing merges: every token keeps its slot
        index = torch.arange(tokens.total, device=tokens.x.device)
        return MergePlan(index, index, tokens.seqlens)
    layout = layouts.take(tokens.seqlens, counts, protected) if layouts is not None else None
    if layout is None:
        layout = RaggedLayout.build(tokens.seqlens, counts, protected, tokens.x.device)
    index, slot = ragged_match(metric, layout)
    return MergePlan(index, slot, layout.seqlens)


def uniform_plan(merge: Merge, sequences: int, length: int) -> MergePlan:
    """Flatten a `Merge` of S sequences of N tokens into packed indices: every input row is one entry of an
    [S, N] grid of packed rows, read at the CLS, unmerged A, B and merged-away A positions."""
    device, c, r = merge.src_idx.device, merge.protected, merge.r
    first_a = c % 2
    kept_a, out = merge.unmerged_idx.shape[1], length - r
    rows = torch.arange(sequences * length, device=device).view(sequences, length)  # packed row of (sequence, slot)
    a_rows = rows[:, c + first_a :: 2].gather(1, torch.cat((merge.unmerged_idx, merge.src_idx), 1)[..., 0])
    keep = torch.cat((rows[:, :c], a_rows[:, :kept_a], rows[:, c + 1 - first_a :: 2]), 1)
    out_rows = torch.arange(sequences * out, device=device)
    src_slot = merge.dst_idx[..., 0] + out_rows.view(sequences, out)[:, c + kept_a : c + kept_a + 1]
    index = torch.cat((keep.view(-1), a_rows[:, kept_a:].reshape(-1)))
    return MergePlan(index, torch.cat((out_rows, src_slot.reshape(-1))), (out,) * sequences)


def _merge_packed(
    tokens: Tokens, metric: Tensor, r: MergeCounts, protected: int, want_destinations: bool
) -> tuple[Tokens, Tensor | None]:
    """The packed path even for equal lengths (tests compare it with the equal-length path)."""
    plan = packed_plan(tokens, metric, r, protected)
    return plan.apply(tokens), (plan.destinations(tokens.total) if want_destinations else None)
