"""Embed only the tubelets a keep mask selects, straight into the packed token container.

This is the part every before-the-model reducer shares (RLT, random masking, their combination): given a video
[B, C, T, H, W] and a bool mask [B, T', H', W'], gather the kept tubelets of all clips in one flat index (no Python
loop over clips or tokens), apply the model's tubelet embedding as a Linear to those rows only, and add the
position embedding of each token's *own* (t, h, w) index (spec rlt §2.1). Dropped tubelets cost nothing past the
gather. Tokens come out in (b, t, h, w) order, with `pos` set and `size` the number of tubelets each token stands
for (its run length for RLT, 1 for random masking).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from vidslim.errors import ConfigError
from vidslim.tokens import Tokens, grid_positions


class TubeletModel(Protocol):
    """What a model must offer to be tokenized from a mask (the video ViT does)."""

    def grid_of(self, video: Tensor) -> tuple[int, int, int]: ...
    def tubelets(self, video: Tensor) -> Tensor: ...
    def project(self, tubelets: Tensor) -> Tensor: ...
    def position_table(self, grid: tuple[int, int, int], device: torch.device, dtype: torch.dtype) -> Tensor: ...


def check_mask(mask: Tensor, batch: int, grid: tuple[int, int, int]) -> Tensor:
    """The mask as bool [B, T', H', W'], or a ConfigError saying what shape was expected."""
    if tuple(mask.shape) != (batch, *grid):
        raise ConfigError(
            f"token mask has shape {tuple(mask.shape)} but the clips have {batch} x {grid} tubelets; build it with "
            "the same frames, size, tubelet and patch as the model input"
        )
    if mask.dtype != torch.bool:
        mask = mask.bool()
    if not mask.flatten(1).any(1).all():
        raise ConfigError("a token mask keeps no token of some clip; every clip needs at least one token")
    return mask


def embed_masked(
    model: TubeletModel,
    video: Tensor,
    mask: Tensor,
    size: Tensor | None = None,
    extra: Tensor | None = None,
) -> Tokens:
    """Packed tokens of the kept tubelets of `video`.

    mask:  bool [B, T', H', W'] (True = becomes a token)
    size:  optional per-slot value [B, T', H', W'] stored as each kept token's size (e.g. run lengths)
    extra: optional per-kept-token embedding [K, D] added after the position embedding (e.g. length embeddings)
    """
    grid = model.grid_of(video)
    mask = check_mask(mask, video.shape[0], grid).to(video.device)
    flat = mask.flatten(1)  # [B, N] in (t, h, w) order
    batch_idx, slot_idx = flat.nonzero(as_tuple=True)  # (b, t, h, w) order, as tokens are packed
    rows = model.tubelets(video)[batch_idx, slot_idx]  # [K, C·ts·p·p], only the kept tubelets
    x = model.project(rows)
    x = x + model.position_table(grid, x.device, x.dtype)[slot_idx]
    if extra is not None:
        x = x + extra
    seqlens = flat.sum(1).tolist()  # one host sync per batch: the layout must be known in Python
    pos = grid_positions(*grid, device=x.device)[slot_idx]
    token_size = size.flatten(1)[batch_idx, slot_idx].to(x.dtype) if size is not None else None
    return Tokens(x, seqlens, pos, token_size)
