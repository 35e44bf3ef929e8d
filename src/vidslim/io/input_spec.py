"""What a model takes as input, and the one function that turns a decoded clip into exactly that tensor.

    spec = model.input_spec                      # travels with the model, saved with its checkpoint
    clip = spec.read("a.mp4")                    # read_video with the spec's frame count and size
    video = spec.prepare(clip)                   # uint8 [T, H, W, 3] -> float32 [1, T, C, H, W] or [1, C, T, H, W]

A spec says the layout ("TCHW": per-frame image towers such as CLIP; "CTHW": 3-D patch models such as VideoMAE),
the per-channel mean and std (in 0-1 units), the frame count and frame size the model was built for, its patch
and tubelet, whether every frame is its own sequence (`per_frame`), and the class names of a classification head.
Models build theirs from their config (`model.input_spec`), so no caller decides any of this by model family.

`prepare` accepts a `Clip`, or uint8 frames [T, H, W, C] / [B, T, H, W, C] as decoded: frames of another size are
resized (short side) and centre-cropped, the way a Hugging Face image processor does, then normalised with one
fused multiply-add and laid out. `check` validates an already prepared float tensor and says how to fix a wrong
one (decoded frames given as float, a TCHW video given where CTHW is wanted, 0-255 pixel values where normalised
values are expected, a frame count or size that does not cut into the model's patches).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from vidslim.errors import ConfigError
from vidslim.io.transforms import IMAGENET_STD, center_crop, normalize, resize_short_side

if TYPE_CHECKING:
    from vidslim.io.video import Clip

Layout = Literal["TCHW", "CTHW"]
LAYOUTS: tuple[Layout, ...] = ("TCHW", "CTHW")

#: a float video whose values reach this far from 0 holds raw pixels, not normalised ones (normalised values of
#: any usual statistics stay within about +-3)
RAW_PIXEL_LEVEL = 20.0


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What a model takes as input (see the module docstring)."""

    layout: Layout
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_frames: int
    image_size: int
    patch_size: int
    tubelet_size: int = 1
    per_frame: bool = False
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ConfigError(f"input layout must be one of {LAYOUTS}, got {self.layout!r}")
        if len(self.mean) != len(self.std) or not self.mean:
            raise ConfigError(f"input mean {self.mean} and std {self.std} need one value per channel each")
        if not all(math.isfinite(m) for m in self.mean) or not all(math.isfinite(s) and s > 0 for s in self.std):
            raise ConfigError(f"input mean {self.mean} must be finite and std {self.std} positive")
        for name in ("num_frames", "image_size", "patch_size", "tubelet_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"input {name} must be a positive integer, got {value!r}")

    # ------------------------------------------------------------------------------------------ geometry
    @property
    def channels(self) -> int:
        return len(self.mean)

    def grid(self, frames: int | None = None, height: int | None = None, width: int | None = None
             ) -> tuple[int, int, int]:
        """(t, h, w) token grid of a clip (default: the spec's own frame count and size)."""
        t = self.num_frames if frames is None else frames
        h = self.image_size if height is None else height
        w = h if width is None else width
        return t // self.tubelet_size, h // self.patch_size, w // self.patch_size

    @property
    def frame_axis(self) -> int:
        """The time axis of a prepared batch (1 for TCHW, 2 for CTHW)."""
        return 1 if self.layout == "TCHW" else 2

    def shape(self, batch: int = 1, frames: int | None = None) -> tuple[int, int, int, int, int]:
        """The shape of a prepared batch of `batch` clips of `frames` frames (default: the spec's)."""
        t, side = self.num_frames if frames is None else frames, self.image_size
        if self.layout == "TCHW":
            return (batch, t, self.channels, side, side)
        return (batch, self.channels, t, side, side)

    def random(self, batch: int = 1, frames: int | None = None, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> Tensor:
        """A random normal batch shaped as the model takes it (token counts and FLOPs do not depend on content)."""
        return torch.randn(self.shape(batch, frames), generator=generator).to(device or "cpu")

    def imagenet_scale(self) -> tuple[float, ...] | None:
        """Per-channel factors from this spec's normalised units to ImageNet-normalised ones (RLT's tau is defined
        there); None when they are the same units."""
        scale = tuple(s / i for s, i in zip(self.std, IMAGENET_STD, strict=True))
        return None if all(abs(f - 1.0) < 1e-12 for f in scale) else scale

    # ------------------------------------------------------------------------------------------ reading
    def read(self, path: str | os.PathLike[str], **options: Any) -> Clip:
        """`read_video(path)` with this spec's frame count and frame size (any option may be overridden)."""
        from vidslim.io.video import read_video

        options.setdefault("num_frames", self.num_frames)
        options.setdefault("size", self.image_size)
        return read_video(path, **options)

    def read_windows(self, path: str | os.PathLike[str], spans: Sequence[tuple[float, float]], **options: Any
                     ) -> list[Clip]:
        """`read_windows(path, spans)` with this spec's frame count and size: one clip per (start, end) window,
        the same frames as `read(path, start=s, end=e)` each, decoded in one pass."""
        from vidslim.io.video import read_windows

        options.setdefault("size", self.image_size)
        return read_windows(path, spans, self.num_frames, **options)

    def prepare(self, clip: Clip | Tensor | Any, device: torch.device | str | None = None) -> Tensor:
        """Decoded frames -> the normalised float32 tensor the model takes, always with a batch axis.

        clip: a `Clip`, or uint8 [T, H, W, C] / [B, T, H, W, C] (numpy arrays too). Frames of another size are
        resized (short side) and centre-cropped to `image_size`; the frame count must fit the model.
        device: where to normalise (moving uint8 is 4x less to copy than float32).
        """
        frames = getattr(clip, "frames", clip)
        if not isinstance(frames, Tensor):
            try:
                frames = torch.as_tensor(frames)
            except (TypeError, ValueError, RuntimeError) as error:
                raise ConfigError(f"prepare takes a Clip or uint8 frames [T, H, W, C], got {type(clip).__name__}"
                                  ) from error
        if frames.dim() == 4:
            frames = frames.unsqueeze(0)
        self._check_decoded(frames)
        if device is not None:
            frames = frames.to(device)
        if tuple(frames.shape[-3:-1]) != (self.image_size, self.image_size):
            frames = center_crop(resize_short_side(frames, self.image_size), self.image_size)
        return normalize(frames, self.mean, self.std, layout=self.layout)

    def _check_decoded(self, frames: Tensor) -> None:
        """Raise a ConfigError naming what was given and what to do unless `frames` are uint8 [B, T, H, W, C]."""
        shape = tuple(frames.shape)
        if frames.dim() != 5:
            raise ConfigError(f"prepare takes decoded frames [T, H, W, C] or [B, T, H, W, C], got shape {shape}")
        if frames.dtype != torch.uint8:
            raise ConfigError(
                f"prepare takes uint8 frames as decoded (0-255), got {frames.dtype} of shape {shape}; pass the "
                "frames read_video returns, or a normalised tensor straight to the model"
            )
        if shape[-1] != self.channels:
            hint = ""
            if shape[2] == self.channels:
                hint = "; the frames look channels-first, permute them to [..., H, W, C]"
            raise ConfigError(f"uint8 frames must be [..., H, W, C={self.channels}] (channels last, as decoded), "
                              f"got shape {shape}{hint}; or pass a normalised float video in the model's layout")
        self.check_frames(shape[1])

    def check_frames(self, frames: int) -> None:
        """A ConfigError unless a clip of `frames` frames cuts into whole tubelets."""
        if frames < 1 or frames % self.tubelet_size:
            raise ConfigError(
                f"a clip of {frames} frames does not cut into tubelets of {self.tubelet_size} frames: sample a "
                f"multiple of {self.tubelet_size} frames (this model takes {self.num_frames}: "
                f"read_video(path, num_frames={self.num_frames}))"
            )

    # ------------------------------------------------------------------------------------------ checking
    def check(self, video: Tensor, model: str = "this model") -> tuple[int, int, int]:
        """(frames, height, width) of a prepared batch in this spec's layout; a ConfigError saying how to fix
        decoded frames, the wrong layout, raw 0-255 values, or a size that does not cut into patches."""
        shape = tuple(video.shape)
        c = self.channels
        want = "[B, T, C, H, W]" if self.layout == "TCHW" else "[B, C, T, H, W]"
        channel_axis = 2 if self.layout == "TCHW" else 1
        if video.dim() == 4 and video.dtype == torch.uint8 and shape[-1] == c:
            return self.check(video.unsqueeze(0), model)  # one decoded clip: reported below
        if video.dim() != 5 or shape[channel_axis] != c:
            hint = ""
            if video.dim() == 5 and shape[-1] == c:
                hint = "; it looks like decoded frames [B, T, H, W, C]: pass uint8 frames and the model prepares them"
            elif video.dim() == 5 and shape[3 - channel_axis] == c:
                other = "[B, C, T, H, W]" if self.layout == "TCHW" else "[B, T, C, H, W]"
                hint = f"; it looks like {other}: pass video.permute(0, 2, 1, 3, 4)"
            elif video.dim() == 4 and shape[-1] == c:
                hint = (f"; it looks like one decoded clip [T, H, W, C] of {video.dtype}: pass it as uint8 and the "
                        "model prepares it")
            elif video.dim() == 4:
                hint = "; add the batch axis: video.unsqueeze(0)"
            raise ConfigError(f"{model} takes video {want} with C={c}, got shape {shape}{hint}")
        if not video.is_floating_point():
            raise ConfigError(f"{model} takes a float video (normalised) or uint8 frames [B, T, H, W, C], "
                              f"got {video.dtype} of shape {shape}")
        frames = shape[1] if self.layout == "TCHW" else shape[2]
        height, width = shape[-2:]
        self.check_frames(frames)
        if height % self.patch_size or width % self.patch_size:
            raise ConfigError(
                f"frames of {height}x{width} do not cut into {self.patch_size}x{self.patch_size} patches; this model "
                f"takes {self.image_size}x{self.image_size}: read_video(path, size={self.image_size})"
            )
        return frames, height, width

    def check_values(self, video: Tensor, model: str = "this model") -> None:
        """A ConfigError when a float video holds raw 0-255 pixels instead of normalised values (one reduction, on
        CPU tensors only: on an accelerator reading the result back would stall the queue every call)."""
        if video.numel() and not torch.compiler.is_compiling() and video.device.type == "cpu":
            peak = float(video.detach().abs().amax())
            if peak > RAW_PIXEL_LEVEL:
                raise ConfigError(
                    f"{model} got a float video with values up to {peak:.0f}: it expects frames normalised with "
                    f"mean {list(self.mean)} and std {list(self.std)}; pass the uint8 frames as decoded and the "
                    "model prepares them (or model.input_spec.prepare(frames))"
                )

    # ------------------------------------------------------------------------------------------ data
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> InputSpec:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ConfigError(f"input spec: unknown field(s) {unknown}; valid fields: {sorted(fields)}")
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**data)


def preprocessor_overrides(config: Mapping[str, Any], where: str = "preprocessor_config.json") -> dict[str, Any]:
    """Input settings a Hugging Face `preprocessor_config.json` gives: mean, std and the frame size, as config
    field names (`image_mean`, `image_std`, `image_size`). Sizes may be an int, {"shortest_edge": N},
    {"height": H, "width": W} (the crop size wins over the resize size, as the processor crops last)."""
    out: dict[str, Any] = {}
    for key in ("image_mean", "image_std"):
        value = config.get(key)
        if value is None:
            continue
        if not isinstance(value, Sequence) or isinstance(value, str) or not all(
            isinstance(v, (int, float)) for v in value
        ):
            raise ConfigError(f"{where}: {key} must be a list of numbers, got {value!r}")
        out[key] = tuple(float(v) for v in value)
    size = config.get("crop_size") if config.get("do_center_crop", True) else None
    size = size if size is not None else config.get("size")
    side = _side(size, where)
    if side is not None:
        out["image_size"] = side
    return out


def _side(size: Any, where: str) -> int | None:
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    if isinstance(size, Mapping):
        if "shortest_edge" in size:
            return int(size["shortest_edge"])
        if "height" in size and "width" in size:
            if int(size["height"]) != int(size["width"]):
                raise ConfigError(f"{where}: vidslim models take square frames, got {size}")
            return int(size["height"])
    raise ConfigError(f"{where}: cannot read a frame size from {size!r}")
