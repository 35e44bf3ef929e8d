"""The shape fields and size checks the model configs share, so each rule has one owner.

Two kinds of config:
- per-frame vision-text models (CLIP, SigLIP, X-CLIP): an image tower run on every frame plus a text tower;
  `FrameTextShape` holds the fields they all have (same names, so converters and guards treat them alike) and
  their (h, w) patch grid;
- tubelet video ViTs (VideoMAE layout, V-JEPA 2, ViViT): `TubeletShape` holds the encoder's fields and its
  (t, h, w) tubelet grid.

Each family subclasses one of them, sets its own defaults and adds its own fields; `validate` checks what every
model of the kind needs and a family adds its own checks after it. The defaults here are CLIP ViT-B/32's and
VideoMAE ViT-B's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vidslim.errors import ConfigError
from vidslim.io.transforms import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD


def check_heads(config: Any, *pairs: tuple[str, str]) -> None:
    """Each (width field, heads field) of `config`: the width splits evenly into the heads."""
    for width, heads in pairs:
        if getattr(config, width) % getattr(config, heads):
            raise ConfigError(f"{width}={getattr(config, width)} is not divisible by {heads}={getattr(config, heads)}")


def check_class_names(config: Any) -> None:
    """Class names, when given, name every output of the classifier head."""
    if config.class_names is not None and len(config.class_names) != config.num_classes:
        raise ConfigError(f"{len(config.class_names)} class names for a head of num_classes={config.num_classes}")


@dataclasses.dataclass
class FrameTextShape:
    """The fields every per-frame vision-text config has. `grid` is a frame's (h, w) patch grid."""

    embed_dim: int = 512
    image_size: int = 224
    patch_size: int = 32
    vision_width: int = 768
    vision_layers: int = 12
    vision_heads: int = 12
    vision_mlp_dim: int = 3072
    context_length: int = 77
    vocab_size: int = 49408
    text_width: int = 512
    text_heads: int = 8
    text_layers: int = 12
    text_mlp_dim: int = 2048
    norm_eps: float = 1e-5
    act: str = "quick_gelu"
    in_chans: int = 3
    num_frames: int = 12
    num_classes: int = 0
    drop_path: float = 0.0
    image_mean: tuple[float, ...] = CLIP_MEAN
    image_std: tuple[float, ...] = CLIP_STD
    class_names: tuple[str, ...] | None = None

    @property
    def grid(self) -> tuple[int, int]:
        side = self.image_size // self.patch_size
        return (side, side)

    def validate(self) -> None:
        """Raise ConfigError when the sizes do not fit together."""
        if self.image_size % self.patch_size:
            raise ConfigError(f"image_size={self.image_size} must be a multiple of patch_size={self.patch_size}")
        check_heads(self, ("vision_width", "vision_heads"), ("text_width", "text_heads"))
        check_class_names(self)


@dataclasses.dataclass
class TubeletShape:
    """The fields every tubelet video ViT config has. `grid` is the (t, h, w) token grid of the configured input."""

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_dim: int = 3072
    image_size: int = 224
    patch_size: int = 16
    num_frames: int = 16
    tubelet_size: int = 2
    in_chans: int = 3
    num_classes: int = 400
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    act: str = "gelu"
    drop_path: float = 0.0
    image_mean: tuple[float, ...] = IMAGENET_MEAN
    image_std: tuple[float, ...] = IMAGENET_STD
    class_names: tuple[str, ...] | None = None

    @property
    def grid(self) -> tuple[int, int, int]:
        side = self.image_size // self.patch_size
        return (self.num_frames // self.tubelet_size, side, side)

    def validate(self) -> None:
        """Raise ConfigError when the sizes do not fit together."""
        check_heads(self, ("embed_dim", "num_heads"))
        if self.image_size % self.patch_size or self.num_frames % self.tubelet_size:
            raise ConfigError(f"image_size={self.image_size} must be a multiple of patch_size={self.patch_size} and "
                              f"num_frames={self.num_frames} a multiple of tubelet_size={self.tubelet_size}")
        check_class_names(self)


__all__ = ["FrameTextShape", "TubeletShape", "check_class_names", "check_heads"]
