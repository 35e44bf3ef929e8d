"""Frame transforms on uint8 torch tensors, batched over every frame at once (no per-frame Python loop).

Frames are channels-last `[..., H, W, C]`, the layout `Clip.frames` has (`[T, H, W, 3]`, or `[B, T, H, W, 3]`
for a batch). Spatial transforms keep that layout and dtype; `to_float` and `normalize` end the pipeline,
producing float32 `[..., T, C, H, W]` ("TCHW", what ViT-style video models take per frame) or
`[..., C, T, H, W]` ("CTHW", what 3D-patch models such as VideoMAE take).

Reading with `read_video(size=...)` already resizes inside the decoder, which is cheaper; these are for
augmentation and for frames that come from elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# name -> (mean, std) per RGB channel, for `normalize(frames, "clip")`
STATS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "clip": (CLIP_MEAN, CLIP_STD),
}

Layout = Literal["TCHW", "CTHW", "THWC"]


def _hw(frames: torch.Tensor) -> tuple[int, int]:
    if frames.dim() < 3:
        raise ValueError(f"frames must be [..., H, W, C], got shape {tuple(frames.shape)}")
    return int(frames.shape[-3]), int(frames.shape[-2])


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def short_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(H, W) with the short side equal to `size` and the aspect ratio kept (long side rounded)."""
    scale = size / min(height, width)
    return max(size, round(height * scale)), max(size, round(width * scale))


def resize(
    frames: torch.Tensor, size: int | Sequence[int], interpolation: str = "bilinear", antialias: bool = True
) -> torch.Tensor:
    """Resize `[..., H, W, C]` frames; an int resizes the short side to it, a pair (H, W) exactly.

    All frames go through one `F.interpolate` call; uint8 bilinear uses torch's native uint8 kernel (much faster
    than going through float), other cases round and clamp back to uint8.
    """
    height, width = _hw(frames)
    out_h, out_w = short_side_size(height, width, size) if isinstance(size, int) else _pair(size)
    if (out_h, out_w) == (height, width):
        return frames
    lead, channels = frames.shape[:-3], frames.shape[-1]
    # [N, C, H, W] view with channels-last strides: torch's fast uint8 kernels work on it in place
    x = frames.reshape(-1, height, width, channels).permute(0, 3, 1, 2)
    kwargs = {"antialias": antialias, "align_corners": False} if interpolation in ("bilinear", "bicubic") else {}
    if frames.dtype == torch.uint8 and interpolation == "bilinear" and x.device.type == "cpu":
        y = F.interpolate(x, size=(out_h, out_w), mode=interpolation, **kwargs)  # native uint8, rounded
    else:
        y = F.interpolate(x if x.is_floating_point() else x.float(), size=(out_h, out_w), mode=interpolation,
                          **kwargs)
        if frames.dtype == torch.uint8:
            y = y.round_().clamp_(0, 255).to(torch.uint8)
    return y.permute(0, 2, 3, 1).reshape(*lead, out_h, out_w, channels)


def resize_short_side(frames: torch.Tensor, size: int, interpolation: str = "bilinear") -> torch.Tensor:
    """Resize so the short side is `size`, keeping the aspect ratio."""
    return resize(frames, int(size), interpolation)


def crop(frames: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """The `height` x `width` window at (`top`, `left`) of every frame (a view, no copy)."""
    frame_h, frame_w = _hw(frames)
    if top < 0 or left < 0 or top + height > frame_h or left + width > frame_w:
        raise ValueError(
            f"crop ({top}, {left}, {height}, {width}) does not fit in frames of {frame_h} x {frame_w}"
        )
    return frames[..., top : top + height, left : left + width, :]


def center_crop(frames: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Crop the centre `size` (int: square, or (H, W)); offsets round down like torchvision's."""
    height, width = _pair(size)
    frame_h, frame_w = _hw(frames)
    return crop(frames, (frame_h - height) // 2, (frame_w - width) // 2, height, width)


def random_crop(
    frames: torch.Tensor, size: int | Sequence[int], generator: torch.Generator | None = None
) -> torch.Tensor:
    """Crop `size` at one random position drawn from `generator`, the same for every frame of the clip."""
    height, width = _pair(size)
    frame_h, frame_w = _hw(frames)
    if height > frame_h or width > frame_w:
        raise ValueError(f"crop {height} x {width} is larger than the frames ({frame_h} x {frame_w})")
    top = int(torch.randint(frame_h - height + 1, (1,), generator=generator))
    left = int(torch.randint(frame_w - width + 1, (1,), generator=generator))
    return crop(frames, top, left, height, width)


def hflip(frames: torch.Tensor) -> torch.Tensor:
    """Mirror every frame left to right."""
    _hw(frames)
    return frames.flip(-2)


def random_hflip(frames: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror the whole clip with probability `p` (one draw from `generator` for all frames)."""
    return hflip(frames) if float(torch.rand((), generator=generator)) < p else frames


def _to_layout(x: torch.Tensor, layout: Layout) -> torch.Tensor:
    """[..., T, H, W, C] -> [..., T, C, H, W], [..., C, T, H, W] or as it is ("THWC"), contiguous."""
    if x.dim() < 4:
        raise ValueError(f"frames must be [..., T, H, W, C], got shape {tuple(x.shape)}")
    if layout == "TCHW":
        return x.movedim(-1, -3).contiguous()
    if layout == "CTHW":
        return x.movedim(-1, -4).contiguous()
    if layout == "THWC":
        return x.contiguous()
    raise ValueError(f"layout must be 'TCHW', 'CTHW' or 'THWC', got {layout!r}")


def to_float(frames: torch.Tensor, layout: Layout = "TCHW") -> torch.Tensor:
    """uint8 [..., T, H, W, C] -> float32 in [0, 1], in `layout`."""
    return _to_layout(frames.float() / 255.0, layout)


def stats(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of a named preset ("imagenet", "clip"); a ValueError names the presets."""
    if name not in STATS:
        raise ValueError(f"unknown statistics {name!r}; choose from {sorted(STATS)}")
    return STATS[name]


def normalize_channels(
    frames: torch.Tensor, mean: Sequence[float], std: Sequence[float], dim: int = -1
) -> torch.Tensor:
    """uint8 (or 0-255 float) frames -> float32 `(x / 255 - mean) / std` along channel axis `dim`, any layout.

    The one place vidslim normalises video: a single fused multiply-add, computed where the frames are (move
    uint8 to the GPU first: 4x less to copy than float32).
    """
    channels = frames.shape[dim]
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=frames.device)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=frames.device)
    if mean_t.shape != (channels,) or std_t.shape != (channels,):
        raise ValueError(f"mean and std need one value per channel ({channels} on axis {dim} of "
                         f"{tuple(frames.shape)})")
    shape = [1] * frames.dim()
    shape[dim] = channels
    scale = (1.0 / (255.0 * std_t)).view(shape)
    shift = (-mean_t / std_t).view(shape)
    # uint8 goes into addcmul as it is: the result is float32 either way, without a float copy of the frames first
    return torch.addcmul(shift, frames if frames.dtype == torch.uint8 else frames.float(), scale)


def normalize(
    frames: torch.Tensor,
    mean: Sequence[float] | str = IMAGENET_MEAN,
    std: Sequence[float] | None = None,
    layout: Layout = "TCHW",
) -> torch.Tensor:
    """uint8 [..., T, H, W, C] -> float32 `(x / 255 - mean) / std` per channel, in `layout`.

    `mean` may name a preset ("imagenet", "clip"), then `std` is taken from it too. The frames are laid out first,
    while they are still bytes, then normalised in one pass straight into the float result: moving float32
    channels last to first costs more than the arithmetic, and with channels innermost the per-channel factors
    change every element, which keeps the arithmetic from running vectorised. A model's own statistics and
    layout are in `model.input_spec`, whose `prepare` calls this.
    """
    if isinstance(mean, str):
        mean, std = stats(mean)
    if std is None:
        raise ValueError("std is required when mean is given as numbers")
    if frames.dim() < 1:
        raise ValueError(f"frames must be [..., T, H, W, C], got shape {tuple(frames.shape)}")
    channel_dim = {"TCHW": -3, "CTHW": -4, "THWC": -1}.get(layout)
    if channel_dim is None:
        raise ValueError(f"layout must be 'TCHW', 'CTHW' or 'THWC', got {layout!r}")
    return normalize_channels(_to_layout(frames, layout), mean, std, dim=channel_dim)


@dataclass(frozen=True)
class VideoTransform:
    """The usual pipeline as one callable: resize short side, crop, optional flip, normalise.

    train=True crops at random and flips with probability 1/2; train=False crops the centre.
    """

    size: int = 224
    train: bool = False
    stats: str = "imagenet"
    layout: Layout = "TCHW"

    def __call__(self, frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        frames = resize_short_side(frames, self.size)
        if self.train:
            frames = random_hflip(random_crop(frames, self.size, generator), 0.5, generator)
        else:
            frames = center_crop(frames, self.size)
        return normalize(frames, self.stats, layout=self.layout)
