"""Run-length bookkeeping shared by RLT and its combinations: which tubelets a kept token stands for.

A *run* at grid location (h, w) is a kept temporal slot t0 followed by the dropped slots after it, up to the next
kept slot t1 at that location (or the end, T'). Its length is t1 - t0, in tubelets. These functions are pure
tensor code (no Python loop over clips or tokens) and report lengths in token order (t, h, w), which is the order
tokens are packed in. The RLT release computes them in (h, w, t) order and so gives most tokens another token's
length when length embeddings are on (spec rlt §1.6); vidslim does what the paper means.
"""

from __future__ import annotations

import torch
from torch import Tensor


def run_length_map(mask: Tensor) -> Tensor:
    """Run length at every kept slot of a keep mask, 0 at dropped slots.

    mask: bool [B, T', H', W']. Returns int64 [B, T', H', W'].
    """
    if mask.dim() != 4 or mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool [B, T', H', W'], got {mask.dtype} {tuple(mask.shape)}")
    slots = mask.shape[1]
    t = torch.arange(slots, device=mask.device).view(1, slots, 1, 1)
    # index of each kept slot, T' where dropped; the next kept slot after t is the suffix minimum over t+1..
    kept_index = torch.where(mask, t, torch.full_like(t, slots))
    end = torch.full_like(kept_index[:, :1], slots)
    after = torch.cat([kept_index[:, 1:], end], dim=1)
    next_kept = after.flip(1).cummin(dim=1).values.flip(1)
    return torch.where(mask, next_kept - t, torch.zeros_like(next_kept))


def run_lengths(mask: Tensor) -> Tensor:
    """One length per kept token, in token (b, t, h, w) order: a flat int64 tensor of length mask.sum().

    Per clip the lengths sum to T'·H'·W' and each lies in [1, T'].
    """
    return run_length_map(mask)[mask]
