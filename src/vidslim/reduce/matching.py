"""Bipartite soft matching, the merge step under ToMe and TempMe (spec tempme §5, §1.11-1.12).

A sequence is `[protected | patches]`: the first `protected` tokens (CLS tokens, one per frame in TempMe) are never
merged. The patches alternate between set A and set B over the *full* sequence index (A = even, B = odd), which
is ToMe's split when there is one CLS token and TempMe's parity rule for any CLS count. Each A token finds its most
similar B token (cosine similarity of the metric); the r A tokens with the best matches are merged into their B
partners; the other A tokens stay. The output order is

    [protected | unmerged A tokens in their original relative order | all B tokens in their original order]

exactly as the official code lays it out: merged B tokens keep their slot and hold the merged value, and the
next merge's A/B split alternates over this new order, so merges match the official code token for token. (With
no protected token ToMe leaves the unmerged A tokens in descending order of their best score; so does this.)

The functions here are pure: `bipartite_soft_matching` returns a `Merge` that can be applied to the features, the
sizes and the source map of the same sequences. All sequences of one call have the same length and the same r;
packed sequences of different lengths (after RLT) and per-sequence counts go through
`vidslim.reduce.token_merge.merge_tokens`, which groups them. There is no Python loop over sequences or tokens.

Precision: the scores are computed in float32 with autocast switched off, whatever the model runs in, so that
bf16/fp16 rounding cannot create ties that reorder the merges; the weighted average is computed in float32 too
(merged sizes reach thousands, and size·x overflows fp16, spec §6.2-6).
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch
from torch import Tensor


@dataclasses.dataclass(frozen=True)
class Merge:
    """The outcome of one matching: which A tokens stay, which merge, and into which B tokens.

    All index tensors are [S, *, 1] positions inside the A (or B) set of each of the S sequences.
    """

    protected: int
    unmerged_idx: Tensor  # [S, Na - r, 1]
    src_idx: Tensor  # [S, r, 1]
    dst_idx: Tensor  # [S, r, 1]

    @property
    def r(self) -> int:
        return self.src_idx.shape[1]

    def __call__(self, x: Tensor, mode: str = "sum") -> Tensor:
        """Apply the merge to per-token values x [S, N, C]: reduce sources into their destinations by `mode`."""
        protected, a, b = _split(x, self.protected)
        channels = x.shape[-1]
        unmerged = a.gather(1, self.unmerged_idx.expand(-1, -1, channels))
        if self.r:
            src = a.gather(1, self.src_idx.expand(-1, -1, channels))
            b = b.scatter_reduce(1, self.dst_idx.expand(-1, -1, channels), src, reduce=mode)
        return torch.cat([protected, unmerged, b], dim=1)

    def weighted_average(self, x: Tensor, size: Tensor) -> tuple[Tensor, Tensor]:
        """Size-weighted merge: (Σ size·x / Σ size, Σ size) over each merged group. x [S, N, C], size [S, N, 1].

        Computed in float32 whatever x's dtype: sizes reach thousands, and size·x overflows fp16 (spec §6.2-6).
        """
        dtype = x.dtype
        size32 = size.float()
        total = self(size32, "sum")
        merged = self(x.float() * size32, "sum") / total
        return merged.to(dtype), total.to(size.dtype)

    def sources(self, source: Tensor) -> Tensor:
        """Track which original tokens each token covers: source [S, N, N0] (0/1) merged with max."""
        return self(source, "amax")


def _split(x: Tensor, protected: int) -> tuple[Tensor, Tensor, Tensor]:
    """[S, N, C] -> (protected [S, c, C], A [S, Na, C], B [S, Nb, C]), alternating over the full index."""
    patches = x[:, protected:]
    first_a = protected % 2  # the first patch is in A when its full index `protected` is even
    return x[:, :protected], patches[:, first_a::2], patches[:, 1 - first_a :: 2]


def no_autocast(t: Tensor) -> contextlib.AbstractContextManager[object]:
    """Switch autocast off for t's device (so float32 scores stay float32); a no-op where autocast is off."""
    kind = t.device.type
    if kind in ("cpu", "cuda", "xpu", "mps") and torch.is_autocast_enabled(kind):
        return torch.autocast(kind, enabled=False)
    return contextlib.nullcontext()


def max_merges(num_tokens: int, protected: int) -> int:
    """The most merges one matching can make: half the patches, rounded down (ToMe's clamp)."""
    return max(num_tokens - protected, 0) // 2


def bipartite_soft_matching(metric: Tensor, r: int, protected: int = 1) -> Merge:
    """Match the tokens of S equal-length sequences, metric [S, N, C], and plan r merges per sequence.

    `r` is clamped to what one matching can do (half the patches). The metric is L2-normalised here.
    """
    if metric.dim() != 3:
        raise ValueError(f"metric must be [S, N, C], got shape {tuple(metric.shape)}")
    if protected < 0 or protected > metric.shape[1]:
        raise ValueError(f"protected={protected} does not fit sequences of {metric.shape[1]} tokens")
    r = max(0, min(int(r), max_merges(metric.shape[1], protected)))
    if metric.requires_grad:  # the plan is indices: nothing here is differentiated
        metric = metric.detach()
    with no_autocast(metric):
        metric = metric if metric.dtype == torch.float32 else metric.float()
        metric = metric / torch.linalg.vector_norm(metric, dim=-1, keepdim=True)
        _, a, b = _split(metric, protected)
        if a.shape[1] == 0 or b.shape[1] == 0:
            empty = torch.zeros(metric.shape[0], 0, 1, dtype=torch.long, device=metric.device)
            keep = torch.arange(a.shape[1], device=metric.device).view(1, -1, 1).expand(metric.shape[0], -1, -1)
            return Merge(protected, keep, empty, empty)
        scores = a @ b.transpose(-1, -2)
        best_score, best_dst = scores.max(dim=-1)
        order = best_score.argsort(dim=-1, descending=True)[..., None]
        unmerged_idx = order[:, r:]
        if protected:  # ToMe sorts only with a class token; TempMe always has one
            unmerged_idx = unmerged_idx.sort(dim=1).values
        src_idx = order[:, :r]
        dst_idx = best_dst[..., None].gather(1, src_idx)
    return Merge(protected, unmerged_idx, src_idx, dst_idx)
