"""Random token masking, the baseline every token-reduction paper compares with (spec rlt §4.1).

`random_keep_mask` keeps round(keep · n) tokens of each clip, at least one, chosen uniformly at random among the
tokens a base mask allows (all of them by default). With an RLT mask as the base it gives the paper's "RLT with
random masking" setting (Table 3), which the release cannot run. The release's `random_droptoken` keeps
int(p · N) - 1 tokens when asked for p; vidslim keeps exactly what it is asked to keep.
"""

from __future__ import annotations

import torch
from torch import Tensor


def random_keep_mask(
    base: Tensor,
    keep: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Bool mask [B, ...] keeping round(keep · n_b) of the n_b tokens that `base` [B, ...] (bool) allows per clip.

    Draws from `generator` (or the global RNG); no Python loop over clips.
    """
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be a fraction in (0, 1], got {keep}")
    if base.dtype != torch.bool or base.dim() < 2:
        raise ValueError(f"base must be a bool mask [B, ...], got {base.dtype} {tuple(base.shape)}")
    flat = base.flatten(1)
    allowed = flat.sum(dim=1)
    target = torch.round(allowed.double() * keep).long().clamp(min=1)
    target = torch.minimum(target, allowed)
    scores = torch.rand(flat.shape, generator=generator, device="cpu" if generator is None else generator.device)
    scores = scores.to(flat.device).masked_fill(~flat, 2.0)  # disallowed tokens sort last
    rank = scores.argsort(dim=1).argsort(dim=1)
    return (rank < target[:, None]).view_as(base)
