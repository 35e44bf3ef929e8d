"""Per-frame RLT for image towers run on every frame (CLIP): vidslim's extension, not the paper's method.

The RLT paper (Choudhury et al., NeurIPS 2024) tokenizes *video* ViTs: 2-frame tubelets, one packed sequence per
clip (`vidslim.tokenize.rlt`). CLIP encodes each frame as its own image, [CLS, 16x16 patches], so here RLT acts per
frame with tubelets one frame long: patch (h, w) of frame t >= 1 is dropped when it repeats the same patch of
frame t-1 (the release's rule with tubelet 1, `rlt_mask.keep_mask`: mean absolute difference of normalised pixels
over the patch and the 3 channels <= tau); frame 0 keeps every patch. Every frame stays its own sequence, now of
variable length, [CLS, kept patches in (h, w) order], packed with no padding. The CLS token is always kept, and
each kept patch gets CLIP's learned position embedding of its own (h, w).

Scores are measured in ImageNet-normalised units whatever the model's normalisation (the CLIP-normalised input is
rescaled per channel by std_clip / std_imagenet), so tau means the same as on the video ViT: tau = 0.1 is about
5.8 grey levels of mean absolute change.

What it means: a dropped patch is not seen again in its frame; the frame's CLS attends only to the patches that
changed. Alone, that makes the embeddings of near-static frames depend on little content. With TempMe the ClipMe
layers join neighbouring frames into one sequence, so from the first merge layer on every CLS sees the kept
patches of its clip (frame 0's full image included), which is the combination this is meant for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from vidslim.errors import ConfigError
from vidslim.io.transforms import CLIP_STD, IMAGENET_STD
from vidslim.tokenize.rlt_mask import keep_mask
from vidslim.tokens import NO_POSITION, Tokens


class FrameTower(Protocol):
    """What an image tower must offer to be tokenized per frame from a mask (CLIP's `VisionTransformer` does)."""

    conv1: torch.nn.Conv2d
    class_embedding: torch.nn.Parameter
    positional_embedding: torch.nn.Parameter
    ln_pre: torch.nn.Module

    def check_video(self, video: Tensor) -> tuple[int, int]: ...


def frame_keep_mask(video: Tensor, tau: float = 0.1, patch: int = 16, std: Sequence[float] = CLIP_STD) -> Tensor:
    """Bool keep mask [B, T, H', W'] of a normalised video [B, T, C, H, W] (frames normalised with `std`).

    Patch (t, h, w), t >= 1, is kept when its mean absolute difference to patch (t-1, h, w), in ImageNet-normalised
    units, is > tau; frame 0 is always kept; tau < 0 keeps every patch.
    """
    if video.dim() != 5 or video.shape[2] != len(std):
        raise ConfigError(f"frame_keep_mask takes frames [B, T, C={len(std)}, H, W], got shape {tuple(video.shape)}")
    scale = torch.tensor([s / i for s, i in zip(std, IMAGENET_STD, strict=True)], device=video.device)
    frames = video.float() * scale.view(1, 1, -1, 1, 1)  # CLIP units -> ImageNet units
    return keep_mask(frames.transpose(1, 2), tau, tubelet=1, patch=patch)


def frame_patches(video: Tensor, patch: int) -> Tensor:
    """[B, T, C, H, W] -> [B·T, H'·W', C·p·p]: every patch flattened in (c, y, x) order (conv1's weight order)."""
    b, t, c, h, w = video.shape
    x = video.reshape(b * t, c, h // patch, patch, w // patch, patch).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b * t, (h // patch) * (w // patch), c * patch * patch)


def embed_frames_masked(tower: FrameTower, video: Tensor, mask: Tensor) -> Tokens:
    """Packed tokens [CLS, kept patches] per frame (B·T sequences, frame-major), after ln_pre.

    mask: bool [B, T, H', W'] (True = the patch becomes a token). Only kept patches are embedded (conv1 applied
    as a Linear to the gathered rows); `pos` is (t, h, w) for patches and NO_POSITION for CLS tokens; `size` is
    None (every token is one patch of its frame).
    """
    b, t = tower.check_video(video)
    weight = tower.conv1.weight
    p = weight.shape[-1]
    grid = (video.shape[-2] // p, video.shape[-1] // p)
    if tuple(mask.shape) != (b, t, *grid):
        raise ConfigError(
            f"frame token mask has shape {tuple(mask.shape)} but the video has {b} x {t} frames of {grid} patches; "
            "build it from the same frames (frame_keep_mask(video, tau, patch))"
        )
    flat = mask.to(video.device, torch.bool).reshape(b * t, -1)  # [BT, H'W']
    frame_idx, slot_idx = flat.nonzero(as_tuple=True)  # frame-major, then (h, w): the packing order
    rows = frame_patches(video.to(weight.dtype), p)[frame_idx, slot_idx]  # [K, C·p·p], kept patches only
    table = tower.positional_embedding.to(weight.dtype)
    patches = F.linear(rows, weight.reshape(weight.shape[0], -1)) + table[1 + slot_idx]
    kept = flat.sum(1)
    seqlens = (kept + 1).tolist()  # one host sync: the layout must be known in Python
    total = sum(seqlens)
    starts = torch.cumsum(kept + 1, 0) - (kept + 1)  # each frame's CLS slot
    x = patches.new_empty(total, patches.shape[1])
    x[starts] = (tower.class_embedding.to(weight.dtype) + table[0]).expand(b * t, -1)
    patch_slot = torch.arange(patches.shape[0], device=x.device) + frame_idx + 1  # frames before + own CLS
    x[patch_slot] = patches
    pos = torch.full((total, 3), NO_POSITION, dtype=torch.int64, device=x.device)
    w = grid[1]
    pos[patch_slot] = torch.stack((frame_idx % t, slot_idx // w, slot_idx % w), dim=1)
    return Tokens(tower.ln_pre(x), seqlens, pos)
