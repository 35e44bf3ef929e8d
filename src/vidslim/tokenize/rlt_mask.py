"""RLT's static-tubelet rule: which tubelets repeat the one before them (spec rlt §1.3-1.5).

For every temporal slot k >= 1 of a clip cut into tubelets of `tubelet` frames, the release compares exactly two
frames: the *last* frame of slot k, (k+1)·tubelet - 1, against the *first* frame of slot k-1, (k-1)·tubelet. It
averages |A - B| over the patch's pixels and the 3 channels of the ImageNet-normalised clip and keeps the tubelet
when that mean is strictly greater than tau. Slot 0 is always kept. The middle frames of each 2-slot window are
never looked at, and slot k is compared with slot k-1 whether or not k-1 was kept: both are the release's
behaviour, kept here on purpose, because the paper's numbers come from it.

Because normalisation is a per-channel affine map, the same score can be computed on uint8 frames with per-channel
weights 1 / (255·std_c) (spec §1.4); `keep_mask_uint8` does that so the mask can be built in the data loader,
before normalisation, on integer data.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vidslim.io.transforms import IMAGENET_STD  # RLT's mask is defined on ImageNet-normalised frames


def _check_grid(frames: int, height: int, width: int, tubelet: int, patch: int) -> tuple[int, int, int]:
    if tubelet < 1 or patch < 1:
        raise ValueError(f"tubelet and patch must be >= 1, got tubelet={tubelet}, patch={patch}")
    if frames % tubelet or height % patch or width % patch:
        raise ValueError(
            f"a clip of {frames} frames of {height}x{width} does not split into {tubelet}x{patch}x{patch} "
            f"tubelets; sample a multiple of {tubelet} frames and resize/crop to a multiple of {patch} pixels"
        )
    return frames // tubelet, height // patch, width // patch


def _compared_frames(frames: Tensor, tubelet: int, time_dim: int) -> tuple[Tensor, Tensor]:
    """(A, B) frame stacks for slots k = 1..T'-1: A = last frame of slot k, B = first frame of slot k-1."""
    slots = frames.shape[time_dim] // tubelet
    # strided views, not gathers: a gather along time of a transposed [B, T, C, H, W] batch is a slow strided copy
    later, earlier = [slice(None)] * frames.dim(), [slice(None)] * frames.dim()
    later[time_dim] = slice(2 * tubelet - 1, slots * tubelet, tubelet)
    earlier[time_dim] = slice(0, max(slots - 1, 0) * tubelet, tubelet)
    return frames[tuple(later)], frames[tuple(earlier)]



def _slot_scores_to_mask(score: Tensor, tau: float) -> Tensor:
    """Scores [B, T'-1, H', W'] -> keep mask [B, T', H', W'] with slot 0 always kept; strict >."""
    b, _, h, w = score.shape
    first = torch.ones(b, 1, h, w, dtype=torch.bool, device=score.device)
    return torch.cat([first, score > tau], dim=1)


def _patch_mean(diff: Tensor, patch: int) -> Tensor:
    """Mean over non-overlapping patch x patch windows of [B, S, H, W] -> [B, S, H/p, W/p]."""
    b, s, h, w = diff.shape
    return diff.view(b, s, h // patch, patch, w // patch, patch).mean(dim=(3, 5))


def slot_scores(
    x: Tensor, tubelet: int = 2, patch: int = 16, channel_scale: Sequence[float] | None = None
) -> Tensor:
    """RLT's difference score of every slot k >= 1: float [B, T'-1, H', W'] from a normalised [B, C, T, H, W] clip.

    channel_scale: per-channel factors that turn x's units into ImageNet-normalised ones (None: they are already);
    |s·a - s·b| = s·|a - b| for s > 0, so the factors are applied after the spatial sums, on a tensor 1/patch the
    size of the clip, instead of to every pixel.
    """
    if x.dim() != 5:
        raise ValueError(f"expected a normalised video [B, C, T, H, W], got shape {tuple(x.shape)}")
    _check_grid(x.shape[2], x.shape[3], x.shape[4], tubelet, patch)
    a, b = _compared_frames(x, tubelet, time_dim=2)
    if x.dtype != torch.float32:  # the release casts the clip to float32 first
        a, b = a.float(), b.float()
    diff = torch.sub(a, b).abs_()
    n, c, s, h, w = diff.shape  # the one full-size buffer; every reduction after it shrinks the data
    rows = diff.view(n, c, s, h, w // patch, patch).sum(-1)  # contiguous innermost sums first: [B, C, S, H, W']
    cells = rows.view(n, c, s, h // patch, patch, w // patch).sum(4)  # [B, C, S, H', W']
    if channel_scale is not None:
        cells = cells * torch.tensor(channel_scale, dtype=cells.dtype, device=cells.device).view(1, c, 1, 1, 1)
    return cells.sum(1) / (c * patch * patch)


def keep_mask(
    x: Tensor, tau: float = 0.1, tubelet: int = 2, patch: int = 16, channel_scale: Sequence[float] | None = None
) -> Tensor:
    """Bool keep mask [B, T', H', W'] of a normalised video [B, C, T, H, W] (True = the tubelet is a token);
    `channel_scale` as in `slot_scores`."""
    return _slot_scores_to_mask(slot_scores(x, tubelet, patch, channel_scale), tau)


def keep_mask_uint8(
    frames: Tensor,
    tau: float = 0.1,
    tubelet: int = 2,
    patch: int = 16,
    std: Sequence[float] = IMAGENET_STD,
) -> Tensor:
    """The same mask computed on raw uint8 frames [B, T, H, W, C] (channels last, as decoded), before normalisation.

    |norm(a) - norm(b)| = |a - b| / (255·std_c), so the score is a weighted mean of integer differences. The sums
    are exact integers and the weights are applied in float64, so this is, if anything, closer to the exact score
    than the float32 path; the two agree except for scores within float32 rounding of tau.
    """
    if frames.dim() != 5 or frames.dtype != torch.uint8:
        raise ValueError(f"expected uint8 frames [B, T, H, W, C], got {frames.dtype} {tuple(frames.shape)}")
    _, t, h, w, c = frames.shape
    if c != len(std):
        raise ValueError(f"frames have {c} channels but std has {len(std)} values")
    _check_grid(t, h, w, tubelet, patch)
    a, b = _compared_frames(frames, tubelet, time_dim=1)
    diff = (a.to(torch.int16) - b.to(torch.int16)).abs()  # [B, T'-1, H, W, C], exact
    weights = 1.0 / (255.0 * torch.tensor(std, dtype=torch.float64, device=frames.device))
    per_pixel = (diff.to(torch.float64) * weights).mean(dim=-1)  # mean over channels
    return _slot_scores_to_mask(_patch_mean(per_pixel, patch), tau)
