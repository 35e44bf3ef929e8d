"""Cut a video into tubelets (or per-frame patches) and back, and name each one by its grid position.

A video [B, C, T, H, W] becomes a grid of T' x H' x W' tubelets, each `tubelet` frames by `patch` x `patch`
pixels (T' = T / tubelet, H' = H / patch, W' = W / patch). Each tubelet is flattened in (c, t, h, w) order, the
order of a Conv3d weight [D, C, tubelet, patch, patch]: so a Linear whose weight is `conv.weight.flatten(1)`
gives exactly the Conv3d(kernel=stride=(tubelet, patch, patch)) patch embedding, and can run on just the
tubelets a reducer kept (RLT embeds only the tubelets it keeps). With tubelet=1 the order is (c, h, w), the
order of a Conv2d weight, for per-frame models such as CLIP.

Grid positions are (t, h, w) in raster order (t slowest, w fastest), matching the order of the flattened grid
and of a 1-D positional table indexed by `flat_index` = t*H'*W' + h*W' + w.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidslim.errors import TokenLayoutError
from vidslim.tokens.packed import NO_POSITION


def patchify(video: Tensor, tubelet: int = 2, patch: int = 16) -> Tensor:
    """[B, C, T, H, W] -> [B, T', H', W', C*tubelet*patch*patch], each tubelet flattened in (c, t, h, w) order."""
    if video.dim() != 5:
        raise TokenLayoutError(f"patchify: video must be [B, C, T, H, W], got shape {tuple(video.shape)}")
    if tubelet < 1 or patch < 1:
        raise TokenLayoutError(f"patchify: tubelet and patch must be >= 1, got tubelet={tubelet}, patch={patch}")
    b, c, t, h, w = video.shape
    if t % tubelet or h % patch or w % patch:
        raise TokenLayoutError(
            f"patchify: a video of {t} frames of {h}x{w} does not split into tubelets of {tubelet} frames and "
            f"patches of {patch}x{patch}; sample a multiple of {tubelet} frames and resize or crop to a "
            f"multiple of {patch} pixels"
        )
    tt, hh, ww = t // tubelet, h // patch, w // patch
    grid = video.reshape(b, c, tt, tubelet, hh, patch, ww, patch)
    # -> [B, T', H', W', C, tubelet, patch, patch]: grid dims first, then the (c, t, h, w) contents
    return grid.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(b, tt, hh, ww, c * tubelet * patch * patch)


def unpatchify(patches: Tensor, tubelet: int = 2, patch: int = 16) -> Tensor:
    """Inverse of `patchify`: [B, T', H', W', C*tubelet*patch*patch] -> [B, C, T, H, W]."""
    if patches.dim() != 5:
        raise TokenLayoutError(
            f"unpatchify: patches must be [B, T', H', W', C*tubelet*patch*patch], got {tuple(patches.shape)}"
        )
    b, tt, hh, ww, features = patches.shape
    volume = tubelet * patch * patch
    if features % volume:
        raise TokenLayoutError(
            f"unpatchify: the last dim {features} is not a multiple of tubelet*patch*patch = {volume}; "
            "pass the tubelet and patch the patches were made with"
        )
    c = features // volume
    grid = patches.reshape(b, tt, hh, ww, c, tubelet, patch, patch)
    # -> [B, C, T', tubelet, H', patch, W', patch]
    return grid.permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(b, c, tt * tubelet, hh * patch, ww * patch)


def grid_positions(t: int, h: int, w: int, device: torch.device | str | None = None) -> Tensor:
    """[t*h*w, 3] int64 (t, h, w) of every cell of a grid, in raster order (t slowest, w fastest)."""
    axes = (torch.arange(n, dtype=torch.int64, device=device) for n in (t, h, w))
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)


def flat_index(pos: Tensor, grid: tuple[int, int, int]) -> Tensor:
    """Raster index t*H'*W' + h*W' + w of positions [..., 3] on a (T', H', W') grid; NO_POSITION stays -1."""
    if pos.shape[-1:] != (3,):
        raise TokenLayoutError(f"flat_index: pos must be [..., 3] (t, h, w), got {tuple(pos.shape)}")
    _, gh, gw = grid
    index = pos[..., 0] * (gh * gw) + pos[..., 1] * gw + pos[..., 2]
    return torch.where((pos == NO_POSITION).any(-1), torch.full_like(index, NO_POSITION), index)
