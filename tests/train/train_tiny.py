"""Tiny models and fake datasets for the training tests (imported by the tests and the subprocess scripts).

`ToyVideos` behaves like a vidslim dataset with on_error="next": item i is a uint8 [T, H, W, 3] clip that is a
function of i (plus optional noise from torch's global generator, to make RNG restoring matter); indices in
`broken` are "broken videos" replaced by the next good one, and the item reports how many it passed over in
`skipped`, exactly like `vidslim.data.dataset.VideoDataset`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from vidslim.data.collate import Collate
from vidslim.train import StageData, TrainConfig

NUM_CLASSES = 4
SIZE = 8


class ToyVideos(Dataset[dict[str, Any]]):
    """Deterministic clips with labels and captions; see the module docstring."""

    def __init__(self, n: int, frames: int = 2, broken: frozenset[int] = frozenset(), noise: float = 0.0,
                 unit: str = "pair") -> None:
        self.n = n
        self.frames = frames
        self.broken = broken
        self.noise = noise
        self.epoch = 0
        self.unit = unit  # "video": items without text; two captions per video in `captions` (evaluation)
        self.captions = [f"clip {i // 2} class {i // 2 % NUM_CLASSES}{'!' * (i % 2)}" for i in range(2 * n)]
        self.text_to_video = torch.arange(2 * n) // 2

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        skipped = 0
        while index in self.broken:
            index = (index + 1) % self.n
            skipped += 1
        g = torch.Generator().manual_seed(index)
        video = torch.randint(0, 256, (self.frames, SIZE, SIZE, 3), generator=g, dtype=torch.uint8)
        label = index % NUM_CLASSES
        video[..., label % 3] = 255 - label * 20  # a colour cue the classifier can learn
        if self.noise:
            video = (video.float() + self.noise * torch.randn(video.shape)).clamp(0, 255).to(torch.uint8)
        item = {"video": video, "label": label, "text": f"clip {index} class {label}", "video_index": index,
                "video_id": f"v{index}", "index": index, "skipped": skipped, "valid": True}
        if self.unit == "video":
            del item["text"]
        return item


class VideoTrunk(nn.Module):
    """Mean over frames, then a small MLP: works for any frame count."""

    def __init__(self, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.proj = nn.Linear(3 * SIZE * SIZE, 16)
        self.norm = nn.LayerNorm(16)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(16, dim)

    def forward(self, video: Tensor) -> Tensor:  # [B, T, C, H, W]
        x = self.proj(video.mean(1).flatten(1))
        return self.out(self.drop(self.norm(torch.nn.functional.gelu(x))))


class TinyClassifier(nn.Module):
    """video [B, T, 3, H, W] -> logits [B, NUM_CLASSES]; records the stages it was told about."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.trunk = VideoTrunk(NUM_CLASSES, dropout)
        self.stages_seen: list[str] = []

    def on_stage(self, stage: Any) -> None:
        self.stages_seen.append(stage.name)

    def forward(self, video: Tensor) -> Tensor:
        return self.trunk(video)


class TinyDualEncoder(nn.Module):
    """encode_video / encode_text into a shared 8-d space; text is a bag of its characters."""

    def __init__(self, dim: int = 8, logit_scale: float | None = math.log(10.0)) -> None:
        super().__init__()
        self.video = VideoTrunk(dim)
        self.chars = nn.EmbeddingBag(128, dim, mode="mean")
        if logit_scale is not None:
            self.logit_scale = nn.Parameter(torch.tensor(logit_scale))

    def encode_video(self, video: Tensor) -> Tensor:
        return self.video(video)

    def encode_text(self, texts: list[str]) -> Tensor:
        codes = [torch.tensor([min(ord(ch), 127) for ch in text]) for text in texts]
        offsets = torch.tensor([0, *torch.tensor([len(c) for c in codes]).cumsum(0)[:-1].tolist()])
        device = self.chars.weight.device
        return self.chars(torch.cat(codes).to(device), offsets.to(device))


def factory(n: int = 32, broken: frozenset[int] = frozenset(), noise: float = 0.0, eval_n: int = 0,
            seen: list[Any] | None = None, eval_unit: str = "pair"):
    """A loaders factory: each stage reads `stage.overrides["frames"]` frames (default 2)."""

    def make(stage: Any) -> StageData:
        frames = int(stage.overrides.get("frames", 2))
        if seen is not None:
            seen.append((stage.name, frames))
        evaluation = ToyVideos(eval_n, frames, unit=eval_unit) if eval_n else None
        return StageData(ToyVideos(n, frames, broken, noise), evaluation, Collate(layout="TCHW"))

    return make


def config(run_dir: Any, **overrides: Any) -> TrainConfig:
    """A quick config: 4 steps of batch 8, lr 1e-2, no progress bar, no periodic checkpoints."""
    values: dict[str, Any] = dict(run_dir=str(run_dir), steps=4, batch_size=8, lr=1e-2, warmup_ratio=0.25,
                                  weight_decay=0.01, log_every=1, checkpoint_every=0, progress=False, seed=0,
                                  eval_at_end=False)
    values.update(overrides)
    return TrainConfig(**values)
