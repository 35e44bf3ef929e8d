"""The `data:` section of a run config (`vidslim train` / `vidslim eval`): datasets by name, or the synthetic one.

    data:
      name: synthetic        # or msrvtt, didemo, activitynet, lsmdc, captions, kinetics, ssv2, labels
      annotation: PATH       # the builder's annotation folder or file; {train: PATH, test: PATH} for per-split
                             # files (kinetics lists); not used by synthetic
      video_root: PATH       # the videos (synthetic: the folder it writes them to)
      train_split: train
      eval_split: test       # null: no evaluation data
      frames: 8              # frames per clip; a curriculum stage may change it (stages.N.overrides.frames)
      fps: null              # sampling rate; null spreads the frames over the video
      size: 224              # short side resized, then a square crop (random in training, centre in evaluation)
      hflip: 0.0             # training flip probability (off: it changes motion classes)
      num_clips: 1           # evaluation views (clips x crops, softmax-averaged for classification)
      num_crops: 1
      sample_seed: null      # per-item sampling generators, the same frames whatever the workers
      cache: false           # decode every clip once, up front, and keep it in memory (small data sets)
      options: {}            # more keyword arguments of the builder, e.g. {all_captions: true} for msrvtt
      synthetic: {}          # make_synthetic arguments: num_videos, fps, seconds, size, seed

Synthetic data (`vidslim.data.synth`): rank 0 writes the videos to `video_root` unless a previous run wrote them
with the same settings (`synthetic.json` there says which); retrieval reads the captions, classification the 8
motion classes; every fifth video is in the "test" split. `cache: true` keeps the decoded clips: training then
sees the same frames of a video every epoch (no sampling jitter), which is what a learning benchmark on a CPU
wants; leave it off for real data sets.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset
from tqdm.auto import tqdm

from vidslim.errors import ConfigError
from vidslim.models.base import config_from_dict
from vidslim.train.distributed import DistInfo, barrier

KINDS = ("retrieval", "classify")
SYNTH_STAMP = "synthetic.json"


@dataclasses.dataclass
class DataSection:
    """The `data:` section (see the module docstring)."""

    name: str = "synthetic"
    annotation: str | dict[str, str] | None = None
    video_root: str | None = None
    train_split: str = "train"
    eval_split: str | None = "test"
    frames: int | None = 8
    fps: float | None = None
    size: int | None = 224
    hflip: float = 0.0
    num_clips: int = 1
    num_crops: int = 1
    sample_seed: int | None = None
    cache: bool = False
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    synthetic: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> DataSection:
        section = config_from_dict(cls, dict(values or {}), where="data")
        section.options = dict(section.options or {})
        section.synthetic = dict(section.synthetic or {})
        return section

    @property
    def is_synthetic(self) -> bool:
        return self.name == "synthetic"


class CachedDataset(Dataset[dict[str, Any]]):
    """Every item of `dataset` read once, up front, and kept in memory; its other attributes pass through."""

    def __init__(self, dataset: Any, label: str = "", progress: bool = False) -> None:
        self.dataset = dataset
        indices = range(len(dataset))
        if progress:
            indices = tqdm(indices, desc=f"caching {label}".strip(), unit="video", leave=False)
        self.items = [dataset[i] for i in indices]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return dict(self.items[index])

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "items"):  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


def synthetic_annotations(section: DataSection, info: DistInfo) -> Path:
    """The synthetic data set's annotations.jsonl, written by rank 0 when missing or made with other settings."""
    from vidslim.data.synth import check_synthetic, make_synthetic

    if not section.video_root:
        raise ConfigError("data.video_root: name the folder the synthetic videos are written to (e.g. data/synth)")
    root = Path(section.video_root)
    settings = {"num_videos": 200, "fps": 8.0, "seconds": 2.0, "size": 64, "seed": 0, **section.synthetic}
    allowed = {"num_videos", "fps", "seconds", "size", "seed", "codec"}
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise ConfigError(f"data.synthetic: unknown key(s) {unknown}; valid keys: {sorted(allowed)}")
    check_synthetic(settings["num_videos"], settings["fps"], settings["seconds"], settings["size"],
                    names=lambda name: f"data.synthetic.{name}")
    annotations = root / "annotations.jsonl"
    if info.is_main:
        stamp = root / SYNTH_STAMP
        current = json.loads(stamp.read_text()) if stamp.is_file() else None
        if current != settings or not annotations.is_file():
            make_synthetic(root, progress=sys.stderr.isatty(), **settings)
            stamp.write_text(json.dumps(settings, indent=1) + "\n")
    barrier(info)
    return annotations


def _annotation(section: DataSection, split: str) -> str:
    value = section.annotation
    if isinstance(value, Mapping):
        if split not in value:
            raise ConfigError(f"data.annotation has no entry for split {split!r} (it has {sorted(value)})")
        return str(value[split])
    if not value:
        raise ConfigError(f"data.annotation: give the {section.name} annotation folder or file")
    return str(value)


def build_split(section: DataSection, kind: str, split: str, train: bool, info: DistInfo,
                frames: int | None = None) -> Any:
    """The dataset of one split, read as `section` says (training or evaluation sampling)."""
    from vidslim.data.builders import build_dataset
    from vidslim.data.dataset import ClassificationDataset, RetrievalDataset
    from vidslim.data.loading import VideoConfig

    if kind not in KINDS:
        raise ConfigError(f"task kind must be one of {KINDS}, got {kind!r}")
    config = VideoConfig(
        num_frames=section.frames if frames is None else int(frames), fps=section.fps, size=section.size,
        train=train, num_clips=1 if train else section.num_clips, num_crops=1 if train else section.num_crops,
        hflip=section.hflip if train else 0.0, seed=section.sample_seed,
    )
    options = dict(section.options)
    if section.is_synthetic:
        from vidslim.data.synth import CLASSES

        annotation, root = str(synthetic_annotations(section, info)), str(section.video_root)
        name = "captions" if kind == "retrieval" else "labels"
        options.setdefault("filter_split", True)
        if kind == "classify":
            options.setdefault("classes", list(CLASSES))
            options.setdefault("num_classes", len(CLASSES))
    else:
        name, annotation = section.name, _annotation(section, split)
        if not section.video_root:
            raise ConfigError(f"data.video_root: give the folder of the {section.name} videos")
        root = section.video_root
    dataset = build_dataset(name, annotation, root, split=split, config=config, **options)
    wanted = RetrievalDataset if kind == "retrieval" else ClassificationDataset
    if not isinstance(dataset, wanted):
        raise ConfigError(f"data.name={section.name!r} gives a {type(dataset).__name__}; `{kind}` needs a "
                          f"{wanted.__name__} (a {'caption' if kind == 'retrieval' else 'label'} data set)")
    if section.cache:
        return CachedDataset(dataset, f"{split} split", progress=info.is_main and sys.stderr.isatty())
    return dataset


__all__ = ["KINDS", "CachedDataset", "DataSection", "build_split", "synthetic_annotations"]
