"""Tubelet embedding for models that take [B, T, C, H, W] video (V-JEPA 2, ViViT): every tubelet, or only the
ones a before-the-model reducer keeps.

Dense input goes through the Conv3d (kernel = stride = tubelet x patch x patch). With a keep mask the kept tubelets
of all clips are read straight out of the video (`gather_blocks`: no copy of the whole video, no loop over clips or
tokens) and the same weights are applied as a Linear to those rows only, so dropped tubelets cost nothing past the
gather. Tokens come out in (b, t, h, w) order with their grid position and the selection's size (RLT's run length).
"""

from __future__ import annotations

import dataclasses

import torch.nn.functional as F
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.models.patch_gather import gather_blocks
from vidslim.tokens import Tokens, grid_positions
from vidslim.tokens.selection import Selection, as_selection


@dataclasses.dataclass(frozen=True)
class Embedded:
    """Embedded tubelets: the tokens, and the flat grid index of each (None when every tubelet was embedded)."""

    tokens: Tokens
    slots: Tensor | None


def tubelet_grid(video: Tensor, in_chans: int, tubelet: int, patch: int, model: str) -> tuple[int, int, int]:
    """(t, h, w) token grid of a prepared [B, T, C, H, W] float video; a one-line error naming the fix otherwise."""
    if video.dim() != 5 or video.shape[2] != in_chans:
        hint = "; it looks like [B, C, T, H, W]: pass video.transpose(1, 2)" if (
            video.dim() == 5 and video.shape[1] == in_chans) else ""
        raise ConfigError(f"{model} takes video [B, T, C={in_chans}, H, W], got shape {tuple(video.shape)}{hint}")
    _, t, _, h, w = video.shape
    if t % tubelet or h % patch or w % patch:
        raise ConfigError(
            f"{model}: video of {t} frames of {h}x{w} does not split into {tubelet}x{patch}x{patch} tubelets; "
            f"sample a multiple of {tubelet} frames and resize to a multiple of {patch}"
        )
    if not video.is_floating_point():
        raise ConfigError(f"{model} takes a float video (normalised), got dtype {video.dtype}")
    return (t // tubelet, h // patch, w // patch)


def embed_tubelets(
    proj: nn.Conv3d, video: Tensor, grid: tuple[int, int, int], keep: Selection | Tensor | None = None
) -> Embedded:
    """Embed the tubelets of [B, T, C, H, W] `video` on `grid`: all of them (equal-length, no copy) or the kept ones
    (bool [B, t, h, w] or a Selection), packed per clip."""
    b = video.shape[0]
    if keep is None:
        x = proj(video.to(proj.weight.dtype).transpose(1, 2)).flatten(2).transpose(1, 2)  # [B, N, D]
        return Embedded(Tokens.from_dense(x, pos=grid_positions(*grid, device=x.device)), None)
    selection = as_selection(keep).checked(b, grid)
    flat = selection.keep.to(video.device).flatten(1)  # [B, N] in (t, h, w) order
    batch_idx, slot_idx = flat.nonzero(as_tuple=True)  # (b, t, h, w) order, as tokens are packed
    ts, p = proj.kernel_size[0], proj.kernel_size[1]
    t, h, w = grid
    cells = video.reshape(b, t, ts, -1, h, p, w, p).permute(0, 1, 4, 6, 3, 2, 5, 7)  # [B, t, h, w, C, ts, p, p]
    index = (batch_idx, slot_idx // (h * w), slot_idx // w % h, slot_idx % w)
    rows = gather_blocks(cells, index).to(proj.weight.dtype)  # [K, C·ts·p·p], only the kept tubelets are read
    x = F.linear(rows, proj.weight.reshape(proj.weight.shape[0], -1), proj.bias)
    if selection.extra is not None:
        x = x + selection.extra
    seqlens = flat.sum(1).tolist()  # one host sync per batch: the layout must be known in Python
    pos = grid_positions(*grid, device=x.device)[slot_idx]
    size = selection.size
    token_size = size.to(x.device).flatten(1)[batch_idx, slot_idx].to(x.dtype) if size is not None else None
    return Embedded(Tokens(x, seqlens, pos, token_size), slot_idx)


__all__ = ["Embedded", "embed_tubelets", "tubelet_grid"]
