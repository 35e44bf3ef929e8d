"""Position tables: VideoMAE's fixed sinusoid table, token grid coordinates, and resizing learned tables.

Grid coordinates themselves come from `vidslim.tokens.grid_positions`.

- `sinusoid_table(n, dim)`: the 1-D table over flattened (t, h, w) indices that VideoMAE (and RLT, spec rlt §2.1)
  use: for dimension j the angle is pos / 10000^(2·floor(j/2)/dim), sin on even j and cos on odd j, computed in
  float64 and cast to float32. Being fixed, it is simply rebuilt for another grid.
- `interpolate_2d`: CLIP's learned table [cls + g·g, D] resized to another grid by bicubic interpolation of the
  grid part, keeping the CLS rows (what open_clip and transformers do).
- `interpolate_3d`: a learned video table [t·h·w, D] resized trilinearly to another (t, h, w) grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vidslim.tokens import NO_POSITION, grid_positions


def sinusoid_table(n: int, dim: int, base: float = 10000.0) -> Tensor:
    """[n, dim] float32 fixed sinusoid position table (VideoMAE / "Attention is all you need" layout)."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)
    angle = pos / torch.pow(torch.tensor(base, dtype=torch.float64), 2.0 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.empty(n, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.float()


def frame_positions(
    frames: int, h: int, w: int, cls_tokens: int = 1, device: torch.device | str | None = None
) -> Tensor:
    """[frames, cls + h·w, 3]: per-frame token coordinates, CLS rows first with NO_POSITION everywhere."""
    grid = grid_positions(frames, h, w, device).view(frames, h * w, 3)
    cls = torch.full((frames, cls_tokens, 3), NO_POSITION, dtype=torch.int64, device=device)
    return torch.cat((cls, grid), dim=1)


def interpolate_2d(table: Tensor, new_grid: tuple[int, int], cls_tokens: int = 1) -> Tensor:
    """Resize a learned [cls + g_h·g_w, D] table to `new_grid` (bicubic, align_corners=False), keeping CLS rows.

    The source grid must be square (as in every CLIP checkpoint).
    """
    cls, grid = table[:cls_tokens], table[cls_tokens:]
    side = round(grid.shape[0] ** 0.5)
    if side * side != grid.shape[0]:
        raise ValueError(f"position table of {grid.shape[0]} grid rows is not a square grid")
    if (side, side) == tuple(new_grid):
        return table
    dim = table.shape[1]
    image = grid.float().reshape(1, side, side, dim).permute(0, 3, 1, 2)
    image = F.interpolate(image, size=tuple(new_grid), mode="bicubic", align_corners=False)
    grid = image.permute(0, 2, 3, 1).reshape(-1, dim).to(table.dtype)
    return torch.cat((cls, grid), dim=0)


def interpolate_3d(table: Tensor, old_grid: tuple[int, int, int], new_grid: tuple[int, int, int]) -> Tensor:
    """Resize a learned [t·h·w, D] video table from `old_grid` to `new_grid` (trilinear, align_corners=False)."""
    if tuple(old_grid) == tuple(new_grid):
        return table
    t, h, w = old_grid
    if t * h * w != table.shape[0]:
        raise ValueError(f"position table of {table.shape[0]} rows does not fit grid {old_grid}")
    dim = table.shape[1]
    volume = table.float().reshape(1, t, h, w, dim).permute(0, 4, 1, 2, 3)
    volume = F.interpolate(volume, size=tuple(new_grid), mode="trilinear", align_corners=False)
    return volume.permute(0, 2, 3, 4, 1).reshape(-1, dim).to(table.dtype)
