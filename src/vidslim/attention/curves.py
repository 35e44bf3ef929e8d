"""Orderings of (t, h, w) token positions: raster, Z-curve (Morton) and Hilbert keys.

SViTT cuts a video's tokens into contiguous blocks of 56 for its block-sparse attention (spec svitt §2). In
raster order (t slowest, w fastest; the release's default `token_3d_order="none"`) a block is a few image
rows of one frame. Along a 3-D space-filling curve (the release's `zcurve` and `hilbert` options) a block is
a compact spatio-temporal cube, so local attention mixes time as well as space.

Each function maps integer positions [n, 3] to an int64 key per token; sorting by the key gives the order.
The curves are defined on a cube of side 2**bits that holds the (t, h, w) grid (bits = ceil(log2(largest
side))); a grid that is not a power-of-two cube simply uses part of the curve, which keeps its locality.
Axes are taken in the order (t, h, w): t is the most significant axis of each Morton bit triple and the first
axis of the Hilbert transform. Keys are computed with a Python loop over the bits (at most a few dozen tensor
ops), never over tokens. Rows with NO_POSITION (CLS tokens) get key -1, so they sort first.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from vidslim.errors import ConfigError, TokenLayoutError
from vidslim.tokens.kept_tensors import kept_across_calls
from vidslim.tokens.packed import NO_POSITION

ORDERS = ("raster", "zcurve", "hilbert")


def curve_bits(grid: tuple[int, int, int]) -> int:
    """Bits per axis of the smallest power-of-two cube holding `grid` (at least 1)."""
    side = max(1, *grid)
    return max(1, (side - 1).bit_length())


def raster_keys(pos: Tensor, grid: tuple[int, int, int]) -> Tensor:
    """[n, 3] -> [n] int64 raster index t*H*W + h*W + w on a (T, H, W) grid."""
    _, h, w = grid
    return pos[:, 0] * (h * w) + pos[:, 1] * w + pos[:, 2]


def zcurve_keys(pos: Tensor, bits: int) -> Tensor:
    """[n, 3] -> [n] int64 Morton (Z-curve) index: the bits of t, h, w interleaved, t most significant.

    key = sum over bit b of (t_b << 2 | h_b << 1 | w_b) << 3b.
    """
    key = torch.zeros(pos.shape[0], dtype=torch.int64, device=pos.device)
    for b in range(bits):
        for axis in range(3):
            key |= ((pos[:, axis] >> b) & 1) << (3 * b + 2 - axis)
    return key


def hilbert_keys(pos: Tensor, bits: int) -> Tensor:
    """[n, 3] -> [n] int64 index along the 3-D Hilbert curve of side 2**bits.

    J. Skilling's transform ("Programming the Hilbert curve", AIP Conf. Proc. 707, 2004): undo the excess
    work of the axes, Gray-encode them into the "transposed" index, then interleave its bits (axis 0 first).
    Consecutive keys are grid neighbours (L1 distance 1) on a full cube.
    """
    x = [pos[:, axis].to(torch.int64).clone() for axis in range(3)]
    top = 1 << (bits - 1)
    q = top
    while q > 1:
        p = q - 1
        for i in range(3):
            has_bit = (x[i] & q) != 0
            if i == 0:
                x[0] = torch.where(has_bit, x[0] ^ p, x[0])  # invert the low bits of axis 0
                continue
            swap = (x[0] ^ x[i]) & p  # exchange the low bits of axis 0 and axis i
            x[0] = torch.where(has_bit, x[0] ^ p, x[0] ^ swap)
            x[i] = torch.where(has_bit, x[i], x[i] ^ swap)
        q >>= 1
    for i in range(1, 3):  # Gray encode
        x[i] = x[i] ^ x[i - 1]
    flip = torch.zeros_like(x[0])
    q = top
    while q > 1:
        flip = torch.where((x[2] & q) != 0, flip ^ (q - 1), flip)
        q >>= 1
    x = [axis ^ flip for axis in x]
    key = torch.zeros_like(x[0])
    for b in range(bits - 1, -1, -1):
        for i in range(3):
            key = (key << 1) | ((x[i] >> b) & 1)
    return key


@functools.lru_cache(maxsize=64)
@kept_across_calls
def _key_table(order: str, grid: tuple[int, int, int], device: torch.device) -> Tensor:
    """[T*H*W] key of every grid cell, indexed by raster index (cached per order, grid and device)."""
    t, h, w = grid
    axes = (torch.arange(n, dtype=torch.int64, device=device) for n in (t, h, w))
    cells = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    if order == "zcurve":
        return zcurve_keys(cells, curve_bits(grid))
    return hilbert_keys(cells, curve_bits(grid))


def order_keys(pos: Tensor, grid: tuple[int, int, int], order: str = "raster") -> Tensor:
    """[n, 3] positions on `grid` -> [n] int64 sort keys under `order` ("raster", "zcurve" or "hilbert").

    Rows holding NO_POSITION (CLS tokens) get -1. Positions outside the grid raise TokenLayoutError.
    """
    if order not in ORDERS:
        raise ConfigError(f"order={order!r} is not a token order; use one of {', '.join(ORDERS)}")
    if pos.dim() != 2 or pos.shape[1] != 3:
        raise TokenLayoutError(f"order_keys: pos must be [n, 3] (t, h, w), got {tuple(pos.shape)}")
    grid = (int(grid[0]), int(grid[1]), int(grid[2]))
    is_cls = (pos == NO_POSITION).any(dim=1)
    cells = pos.clamp_min(0)
    if pos.numel() and bool(((cells >= torch.tensor(grid, device=pos.device)) & ~is_cls[:, None]).any()):
        raise TokenLayoutError(
            f"order_keys: a token position lies outside the (t, h, w) grid {grid}; pass the grid of the input video"
        )
    index = raster_keys(cells, grid)
    keys = index if order == "raster" else _key_table(order, grid, pos.device)[index]
    return torch.where(is_cls, torch.full_like(keys, -1), keys)
