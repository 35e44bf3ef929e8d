"""Move a collated batch to the device, turning uint8 video into float there (4x less to copy than float32).

Decoded uint8 video in layout "THWC" (what `vidslim.data.Collate(layout="THWC")` gives) moves as it is: a vidslim
model prepares it itself, with its own input spec. Other uint8 video becomes float32 `(x / 255 - mean) / std` with
the named statistics ("clip", "imagenet"), or `x / 255` with none, normalised along the channel axis of the
batch layout (for models without an input spec). Float video is moved as it is. Tensors move with non_blocking
copies; other values (caption lists, ids, the `skipped` count) stay as they are.
"""

from __future__ import annotations

from typing import Any

import torch

from vidslim.errors import ConfigError
from vidslim.io.transforms import STATS, normalize_channels

_CHANNEL_DIM = {"TCHW": -3, "CTHW": -4, "THWC": -1}


def normalize_video(video: torch.Tensor, stats: str | None, layout: str) -> torch.Tensor:
    """uint8 video in `layout` (any leading dims) -> float32, normalised per channel with `stats`."""
    if layout not in _CHANNEL_DIM:
        raise ConfigError(f"video_layout must be one of {sorted(_CHANNEL_DIM)}, got {layout!r}")
    if stats is None:
        return video.float().mul_(1.0 / 255.0)
    if stats not in STATS:
        raise ConfigError(f"video_normalize must be one of {sorted(STATS)} or null, got {stats!r}")
    dim = _CHANNEL_DIM[layout]
    if video.dim() < -dim or video.shape[dim] != 3:
        raise ConfigError(f"video of shape {tuple(video.shape)} has no 3-channel axis for layout {layout}; set "
                          "video_layout to the layout the collate function produces")
    return normalize_channels(video, *STATS[stats], dim=dim)


def move_batch(batch: Any, device: torch.device, stats: str | None = None, layout: str = "TCHW") -> Any:
    """The batch on `device`: a dict's tensors moved, uint8 `video` normalised (module docstring)."""
    if not isinstance(batch, dict):
        raise ConfigError(f"batches must be dicts (vidslim.data.Collate gives them), got {type(batch).__name__}")
    non_blocking = device.type == "cuda"
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=non_blocking)
            if key == "video" and value.dtype == torch.uint8 and layout != "THWC":
                value = normalize_video(value, stats, layout)
        out[key] = value
    return out


__all__ = ["move_batch", "normalize_video"]
