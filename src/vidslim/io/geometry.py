"""Output frame geometry: turn a decoded frame into an upright, resized, cropped RGB array in one step.

The resize happens inside FFmpeg's swscale while converting YUV to RGB (`VideoFrame.to_ndarray` with a width
and height), so a full-resolution RGB frame never exists in memory. The display matrix's rotation is then
applied with a cheap `np.rot90` of the already small frame, and the crop is a slice of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from vidslim.errors import SamplingError
from vidslim.io.limits import check_size

Size = int | tuple[int, int] | None

CROPS = ("center", "random", None)

INTERPOLATIONS = ("fast_bilinear", "bilinear", "bicubic", "area", "lanczos", "point")


@dataclass(frozen=True)
class Geometry:
    """How to produce output frames from decoded ones.

    `scaled` is the (width, height) to ask swscale for, in the stored (not yet rotated) orientation; `quarter`
    the number of counter-clockwise quarter turns that make the frame upright; `box` the crop
    (top, left, height, width) in the upright resized frame.
    """

    scaled: tuple[int, int]
    quarter: int
    box: tuple[int, int, int, int]
    interpolation: str
    # one reformatter per step and read keeps FFmpeg's scaler set up between frames;
    # VideoFrame.to_ndarray(width=...) builds a new one each call, a cost paid on every frame
    scaler: VideoReformatter = field(default_factory=VideoReformatter, compare=False, repr=False)
    reformatter: VideoReformatter = field(default_factory=VideoReformatter, compare=False, repr=False)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """Shape [H, W, 3] of one output frame."""
        return (self.box[2], self.box[3], 3)

    def convert(self, frame: av.VideoFrame) -> np.ndarray:
        """Decoded frame -> uint8 [H, W, 3] RGB, resized in swscale, rotated upright, cropped.

        YUV frames are scaled in YUV first and converted to RGB at the small size: less work than scaling and
        converting in one swscale call (whose RGB output is also slow at odd widths), and as close to an
        antialiased float resize of the full RGB frame.
        """
        width, height = self.scaled
        if (frame.width, frame.height) == (width, height):
            rgb = self.reformatter.reformat(frame, format="rgb24").to_ndarray()
        else:
            options = {"width": width, "height": height, "interpolation": self.interpolation.upper()}
            if frame.format.name.startswith(_SCALE_IN_SOURCE_FORMAT):
                small = self.scaler.reformat(frame, **options)
                rgb = self.reformatter.reformat(small, format="rgb24").to_ndarray()
            else:
                rgb = self.reformatter.reformat(frame, format="rgb24", **options).to_ndarray()
        if self.quarter:
            rgb = np.rot90(rgb, self.quarter)
        top, left, h, w = self.box
        return rgb[top : top + h, left : left + w]


# pixel formats scaled before conversion to RGB (see Geometry.convert)
_SCALE_IN_SOURCE_FORMAT = ("yuv", "nv12", "nv21", "gray")


def check_geometry(size: Size, crop: str | None = None, interpolation: str = "bilinear") -> None:
    """Reject sizes, crops and interpolations read_video cannot honour, naming the argument."""
    if crop not in CROPS:
        raise SamplingError(f"crop must be 'center', 'random' or None, got {crop!r}")
    if interpolation not in INTERPOLATIONS:
        raise SamplingError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    if size is None:
        return
    if isinstance(size, bool) or not isinstance(size, int | tuple | list):
        raise SamplingError(f"size must be an int, an (H, W) pair or None, got {size!r}")
    values = (size,) if isinstance(size, int) else tuple(size)
    if len(values) != (1 if isinstance(size, int) else 2) or not all(isinstance(v, int) and v >= 1 for v in values):
        raise SamplingError(f"size must be a positive int or a pair of positive ints (H, W), got {size!r}")
    for value in values:
        check_size(value, "size")


def plan_geometry(
    width: int,
    height: int,
    rotation: int,
    size: Size,
    crop: str | None,
    interpolation: str = "bilinear",
    generator: torch.Generator | None = None,
) -> Geometry:
    """Geometry for frames stored as `width` x `height` that must be turned `rotation` degrees (ccw).

    size None keeps the upright display size; an int resizes the short side to `size` (keeping the aspect
    ratio) and then crops `size` x `size` at the centre or a random place (crop None: resize only); a pair
    (H, W) resizes to exactly H x W. Pixels are taken as square (the sample aspect ratio is ignored, as
    decord, torchvision and OpenCV do), so sizes match other loaders. A random crop
    position is drawn once from `generator`, so every frame of a clip is cropped alike.
    """
    check_geometry(size, crop, interpolation)
    quarter = (rotation // 90) % 4
    up_h, up_w = (height, width) if quarter % 2 == 0 else (width, height)
    if size is None:
        out_h, out_w = up_h, up_w
    elif isinstance(size, int):
        scale = size / min(up_h, up_w)
        out_h, out_w = max(size, round(up_h * scale)), max(size, round(up_w * scale))
    else:
        out_h, out_w = int(size[0]), int(size[1])
    box = (0, 0, out_h, out_w)
    if isinstance(size, int) and crop is not None:
        if crop == "center":
            top, left = (out_h - size) // 2, (out_w - size) // 2
        else:
            top = int(torch.randint(out_h - size + 1, (1,), generator=generator))
            left = int(torch.randint(out_w - size + 1, (1,), generator=generator))
        box = (top, left, size, size)
    scaled = (out_w, out_h) if quarter % 2 == 0 else (out_h, out_w)
    return Geometry(scaled, quarter, box, interpolation)
