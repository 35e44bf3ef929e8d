"""Batch dataset items: stack the frames into one dense video tensor, gather texts, labels and ids.

`Collate(layout, normalize)` is a picklable callable for `DataLoader(collate_fn=...)`. The batch is a dict:

- `video`: [B, T, C, H, W] (layout "TCHW", per-frame models such as CLIP), [B, C, T, H, W] ("CTHW", 3D-patch
  models such as VideoMAE) or [B, T, H, W, C] ("THWC", as decoded); items with V views give [B, V, ...].
  normalize=None keeps uint8 (4x less to move between worker processes and to the GPU). With "THWC" and no
  normalisation a vidslim model prepares the batch itself (`model.input_spec`), on its own device: the usual
  choice. normalize="clip" / "imagenet" gives float32 `(x / 255 - mean) / std`.
- `text`: list[str] (retrieval pairs); `label`: int64 [B] (classification).
- `index`, `video_index`: int64 [B]; `video_id`: list[str]; `valid`: bool [B] (False for blank items).
- `skipped`: int, broken videos passed over while building this batch (sum these in the training loop; see
  `vidslim.data.dataset`).

Packing into `vidslim.tokens.Tokens` happens in the model, after patchify and any reducer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from vidslim.errors import ConfigError
from vidslim.io.transforms import STATS, normalize  # STATS: name -> (mean, std) per RGB channel, in [0, 1] units

VideoLayout = Literal["TCHW", "CTHW", "THWC"]
LAYOUTS = ("TCHW", "CTHW", "THWC")

def prepare_video(frames: torch.Tensor, stats: str | None = None, layout: VideoLayout = "TCHW") -> torch.Tensor:
    """Channels-last frames [..., T, H, W, C] -> `layout`, normalised to float32 when `stats` names statistics
    (`vidslim.io.transforms.normalize`: one fused multiply-add before the single layout copy)."""
    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if frames.dim() < 4:
        raise ConfigError(f"frames must be [..., T, H, W, C], got shape {tuple(frames.shape)}")
    if stats is not None:
        if stats not in STATS:
            raise ConfigError(f"normalize must be one of {sorted(STATS)} or None, got {stats!r}")
        return normalize(frames, stats, layout=layout)
    if layout == "TCHW":
        return frames.movedim(-1, -3).contiguous()
    if layout == "CTHW":
        return frames.movedim(-1, -4).contiguous()
    return frames.contiguous()


@dataclass(frozen=True)
class Collate:
    """`collate_fn` for vidslim datasets: dense video in `layout`, optionally normalised (see module doc)."""

    layout: VideoLayout = "TCHW"
    normalize: str | None = None

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ConfigError(f"Collate: layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.normalize is not None and self.normalize not in STATS:
            raise ConfigError(f"Collate: normalize must be one of {sorted(STATS)} or None, got {self.normalize!r}")

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        if not items:
            raise ValueError("Collate: empty batch")
        shapes = {tuple(item["video"].shape) for item in items}
        if len(shapes) > 1:
            raise ConfigError(f"Collate: videos of different shapes in one batch {sorted(shapes)}; set "
                              "VideoConfig.size and num_frames so every item has the same shape")
        batch: dict[str, Any] = {
            "video": prepare_video(torch.stack([item["video"] for item in items]), self.normalize, self.layout),
            "index": torch.tensor([item["index"] for item in items], dtype=torch.long),
            "valid": torch.tensor([bool(item.get("valid", True)) for item in items], dtype=torch.bool),
            "skipped": sum(int(item.get("skipped", 0)) for item in items),
        }
        first = items[0]
        if "text" in first:
            batch["text"] = [item["text"] for item in items]
        if "label" in first:
            batch["label"] = torch.tensor([item["label"] for item in items], dtype=torch.long)
        if "video_index" in first:
            batch["video_index"] = torch.tensor([item["video_index"] for item in items], dtype=torch.long)
        if "video_id" in first:
            batch["video_id"] = [item["video_id"] for item in items]
        return batch
