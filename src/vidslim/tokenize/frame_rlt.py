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

The code is `vs.RLT` itself: a model whose `InputSpec` says `per_frame` (tubelet 1, a CLS per frame) gets the
mask of this rule, and embeds [CLS, kept patches] per frame in `model.embed(video, keep)`. `frame_keep_mask`
below is the same mask as a plain function of frames.

What it means: a dropped patch is not seen again in its frame; the frame's CLS attends only to the patches that
changed. Alone, that makes the embeddings of near-static frames depend on little content. With TempMe the ClipMe
layers join neighbouring frames into one sequence, so from the first merge layer on every CLS sees the kept
patches of its clip (frame 0's full image included), which is the combination this is meant for.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from vidslim.errors import ConfigError
from vidslim.io.transforms import CLIP_STD, IMAGENET_STD
from vidslim.tokenize.rlt_mask import keep_mask


def frame_keep_mask(video: Tensor, tau: float = 0.1, patch: int = 16, std: Sequence[float] = CLIP_STD) -> Tensor:
    """Bool keep mask [B, T, H', W'] of a normalised video [B, T, C, H, W] (frames normalised with `std`).

    Patch (t, h, w), t >= 1, is kept when its mean absolute difference to patch (t-1, h, w), in ImageNet-normalised
    units, is > tau; frame 0 is always kept; tau < 0 keeps every patch.
    """
    if video.dim() != 5 or video.shape[2] != len(std):
        raise ConfigError(f"frame_keep_mask takes frames [B, T, C={len(std)}, H, W], got shape {tuple(video.shape)}")
    scale = [s / i for s, i in zip(std, IMAGENET_STD, strict=True)]  # CLIP units -> ImageNet units
    return keep_mask(video.transpose(1, 2), tau, tubelet=1, patch=patch, channel_scale=scale)
