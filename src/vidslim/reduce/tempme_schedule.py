"""TempMe's token schedule: how many tokens every layer merges, computed once before the forward pass.

The official code decides per layer at run time with list pops and float arithmetic (spec tempme §1.3, §1.6).
The counts depend only on the configuration, so vidslim computes the whole schedule up front (static,
torch.compile-friendly) with the same float-then-truncate arithmetic, so that `int(168 * 0.3) == 50` here too:

* a layer before the first merge layer is ImgMe: r = `r` merges within each frame (clamped to half the patches,
  where the release would fail);
* a layer in `merge_layers` is ClipMe with group factor k: k neighbouring sequences are joined, then
  M0 = min(int(n·k·rc), (n - c)·k // 2) tokens are merged across the joined clips before attention and
  M1 = min(int((n·k - M0)·ri), ((n - c)·k - M0) // 2) within the clip after it (c = CLS tokens per sequence
  before the layer, n = tokens per sequence before the layer);
* any other layer after the first merge layer merges M = min(int(n·ri), (n - c) // 2) within the clip.

`rc` and `ri` here are *merge* fractions (the official `--merge_token_proportion 30-10` gives 0.30 and 0.10);
the paper states keep ratios R_C = 1 - rc and R_I = 1 - ri.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

LayerKind = Literal["imgme", "clipme", "intra"]


@dataclasses.dataclass(frozen=True)
class LayerPlan:
    """What one layer does, per video. Token counts are per sequence (a frame, then a clip, then the video)."""

    layer: int
    kind: LayerKind
    group: int  # sequences joined at this layer (1 unless ClipMe)
    sequences: int  # sequences per video inside this layer (after joining)
    cls_tokens: int  # CLS tokens per sequence inside this layer
    tokens_in: int  # tokens per sequence entering the layer (after joining, before the cross-clip merge)
    tokens_attn: int  # tokens per sequence entering attention
    tokens_out: int  # tokens per sequence leaving the layer
    merge_cross: int  # M0: merged across clips before attention (ClipMe only)
    merge_after_attn: int  # merged after attention: r (ImgMe), M1 (ClipMe) or M (intra)


def proportional_merges(tokens: int, cls_tokens: int, fraction: float) -> int:
    """min(int(tokens·fraction), (tokens - cls_tokens) // 2): the merges of a proportional step (§1.6).

    `tokens` counts the CLS tokens too (the percentage is of all tokens); the clamp is half the patches. This is
    M0 of a ClipMe layer (on the joined sequence, fraction rc), M1 (on the tokens after the cross-clip merge,
    fraction ri) and M of an intra-clip layer (fraction ri), with float-then-truncate arithmetic.
    """
    return max(0, min(int(tokens * fraction), (tokens - cls_tokens) // 2))


def imgme_merges(tokens: int, cls_tokens: int, r: int) -> int:
    """r, clamped to half the patches (the release does not clamp and fails where this clamps)."""
    return max(0, min(int(r), (tokens - cls_tokens) // 2))


def merge_fraction_from_percent(percent: float) -> float:
    """int(percent) / 100 as the official flags compute it, for a percentage such as 30."""
    return int(percent) / 100


def tempme_schedule(
    num_layers: int,
    num_frames: int,
    tokens_per_frame: int,
    r: int,
    merge_layers: Sequence[int],
    groups: Sequence[int],
    rc: float,
    ri: float,
    cls_tokens: int = 1,
) -> list[LayerPlan]:
    """The per-layer plan of TempMe for one video of `num_frames` frames of `tokens_per_frame` tokens (incl. CLS)."""
    merge_layers, groups = list(merge_layers), list(groups)
    if len(merge_layers) != len(groups):
        raise ValueError(f"merge_layers {merge_layers} and groups {groups} must have the same length")
    if merge_layers != sorted(set(merge_layers)) or any(not 0 <= m < num_layers for m in merge_layers):
        raise ValueError(f"merge_layers {merge_layers} must be increasing layer indices in [0, {num_layers})")
    product = 1
    for k in groups:
        if k < 1:
            raise ValueError(f"group factors must be >= 1, got {groups}")
        product *= k
    if num_frames % product:
        raise ValueError(
            f"{num_frames} frames cannot be grouped by {groups} (their product {product} must divide the frame count)"
        )
    first_merge = merge_layers[0] if merge_layers else num_layers
    plan: list[LayerPlan] = []
    sequences, n, c = num_frames, tokens_per_frame, cls_tokens
    for layer in range(num_layers):
        if layer in merge_layers:
            k = groups[merge_layers.index(layer)]
            joint, joint_cls = n * k, c * k
            m0 = proportional_merges(joint, joint_cls, rc)
            attn = joint - m0
            m1 = proportional_merges(attn, joint_cls, ri)
            plan.append(LayerPlan(layer, "clipme", k, sequences // k, joint_cls, joint, attn, attn - m1, m0, m1))
            sequences, n, c = sequences // k, attn - m1, joint_cls
            continue
        if layer < first_merge:
            kind: LayerKind = "imgme"
            m = imgme_merges(n, c, r)
        else:
            kind = "intra"
            m = proportional_merges(n, c, ri)
        plan.append(LayerPlan(layer, kind, 1, sequences, c, n, n, n - m, 0, m))
        n -= m
    return plan
