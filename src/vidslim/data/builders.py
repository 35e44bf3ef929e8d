"""Datasets by name and split, from the standard file names in an annotation folder.

    ds = msrvtt("data/msrvtt_data", "data/MSRVTT/videos/all", split="train")      # 9k, every caption a pair
    ds = msrvtt("data/msrvtt_data", "data/MSRVTT/videos/all", split="test")       # 1k-A
    ds = build_dataset("kinetics", "lists/val.txt", "k400/val", split="val")

Training splits read one random clip (`VideoConfig(train=True)`) and replace a broken video by the next item;
evaluation splits read uniform frames and give a broken video black frames (`on_error="blank"`) so the
caption-video mapping of the protocol stays intact. Pass `config` / `on_error` to override. The default frame
budget is 12 frames at 224 px (TempMe and CLIP4Clip on MSRVTT); ActivityNet and DiDeMo paragraphs are usually
read with more (CLIP4Clip: 64).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidslim.data.classification_formats import parse_labels, parse_ssv2, parse_video_list
from vidslim.data.dataset import ClassificationDataset, RetrievalDataset
from vidslim.data.loading import VideoConfig
from vidslim.data.records import PathLike, Record
from vidslim.data.retrieval_formats import parse_activitynet, parse_captions, parse_didemo, parse_lsmdc, parse_msrvtt
from vidslim.errors import AnnotationError, ConfigError

TRAIN_SPLITS = ("train", "training")


def _defaults(split: str, config: VideoConfig | None, kwargs: dict[str, Any]) -> tuple[VideoConfig, dict[str, Any]]:
    train = split in TRAIN_SPLITS
    kwargs.setdefault("on_error", "next" if train else "blank")
    return config or VideoConfig(num_frames=12, size=224, train=train), kwargs


def _first_existing(folder: Path, names: tuple[str, ...], what: str) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise AnnotationError(f"{folder}: no {what} file (looked for {', '.join(names)})")


def _split(split: str, allowed: tuple[str, ...], dataset: str) -> None:
    if split not in allowed:
        raise ConfigError(f"{dataset}: split must be one of {allowed}, got {split!r}")


def msrvtt(anno_dir: PathLike, video_root: PathLike, split: str = "train", config: VideoConfig | None = None,
           train_list: str = "MSRVTT_train.9k.csv", all_captions: bool = False, **kwargs: Any) -> RetrievalDataset:
    """MSRVTT from the CLIP4Clip `msrvtt_data` folder: train = `train_list` (9k), test = the 1k-A split.

    all_captions=True evaluates with every caption of the test videos (unit "video", several per video).
    """
    _split(split, ("train", "test"), "msrvtt")
    folder = Path(anno_dir)
    data = folder / "MSRVTT_data.json"
    csv = folder / (train_list if split == "train" else "MSRVTT_JSFUSION_test.csv")
    records = parse_msrvtt(csv, data if data.is_file() or split == "train" else None, all_captions)
    config, kwargs = _defaults(split, config, kwargs)
    kwargs.setdefault("unit", "video" if all_captions and split != "train" else "pair")
    return RetrievalDataset(records, video_root, config, **kwargs)


def didemo(anno_dir: PathLike, video_root: PathLike, split: str = "train", config: VideoConfig | None = None,
           **kwargs: Any) -> RetrievalDataset:
    """DiDeMo paragraph-to-video from `{split}_data.json` (and `{split}_list.txt` when present)."""
    _split(split, ("train", "val", "test"), "didemo")
    folder = Path(anno_dir)
    listed = folder / f"{split}_list.txt"
    records = parse_didemo(folder / f"{split}_data.json", listed if listed.is_file() else None)
    config, kwargs = _defaults(split, config, kwargs)
    return RetrievalDataset(records, video_root, config, **kwargs)


def activitynet(anno_dir: PathLike, video_root: PathLike, split: str = "train", config: VideoConfig | None = None,
                **kwargs: Any) -> RetrievalDataset:
    """ActivityNet Captions paragraph-to-video: train = train.json, val = val_1.json (with the id lists)."""
    _split(split, ("train", "val"), "activitynet")
    folder = Path(anno_dir)
    captions, ids = ("train.json", "train_ids.json") if split == "train" else ("val_1.json", "val_ids.json")
    records = parse_activitynet(folder / captions, folder / ids if (folder / ids).is_file() else None)
    config, kwargs = _defaults(split, config, kwargs)
    return RetrievalDataset(records, video_root, config, **kwargs)


LSMDC_FILES = {"train": "LSMDC16_annos_training.csv", "val": "LSMDC16_annos_val.csv",
               "test": "LSMDC16_challenge_1000_publictect.csv"}


def lsmdc(anno_dir: PathLike, video_root: PathLike, split: str = "train", config: VideoConfig | None = None,
          **kwargs: Any) -> RetrievalDataset:
    """LSMDC 2016 clips: train, val, or the 1,000-clip test."""
    _split(split, tuple(LSMDC_FILES), "lsmdc")
    records = parse_lsmdc(Path(anno_dir) / LSMDC_FILES[split])
    config, kwargs = _defaults(split, config, kwargs)
    return RetrievalDataset(records, video_root, config, **kwargs)


def captions(annotation: PathLike, video_root: PathLike, split: str = "train", config: VideoConfig | None = None,
             filter_split: bool = False, **kwargs: Any) -> RetrievalDataset:
    """A generic caption file (JSONL / JSON / CSV / TSV); filter_split keeps only rows whose `split` matches."""
    records = parse_captions(annotation, split if filter_split else None)
    config, kwargs = _defaults(split, config, kwargs)
    return RetrievalDataset(records, video_root, config, **kwargs)


def kinetics(list_file: PathLike, video_root: PathLike, split: str = "train", config: VideoConfig | None = None,
             **kwargs: Any) -> ClassificationDataset:
    """Kinetics (or any `<path> <label>` list)."""
    config, kwargs = _defaults(split, config, kwargs)
    return ClassificationDataset(parse_video_list(list_file), video_root, config, **kwargs)


SSV2_FILES = {
    "labels": ("something-something-v2-labels.json", "labels.json"),
    "train": ("something-something-v2-train.json", "train.json"),
    "validation": ("something-something-v2-validation.json", "validation.json"),
}


def ssv2(anno_dir: PathLike, video_root: PathLike, split: str = "train", config: VideoConfig | None = None,
         **kwargs: Any) -> ClassificationDataset:
    """Something-Something v2 classification (174 classes) from the official label and split json files."""
    _split(split, ("train", "validation"), "ssv2")
    folder = Path(anno_dir)
    records = parse_ssv2(_first_existing(folder, SSV2_FILES[split], f"SSv2 {split}"),
                         _first_existing(folder, SSV2_FILES["labels"], "SSv2 labels"))
    config, kwargs = _defaults(split, config, kwargs)
    kwargs.setdefault("num_classes", 174)
    return ClassificationDataset(records, video_root, config, **kwargs)


def labels(annotation: PathLike, video_root: PathLike, split: str = "train", config: VideoConfig | None = None,
           filter_split: bool = False, **kwargs: Any) -> ClassificationDataset:
    """A generic label file (JSONL / JSON / CSV / TSV with video and label columns)."""
    classes = kwargs.get("classes")
    records: list[Record] = parse_labels(annotation, classes, split if filter_split else None)
    config, kwargs = _defaults(split, config, kwargs)
    return ClassificationDataset(records, video_root, config, **kwargs)


DATASETS: dict[str, Callable[..., RetrievalDataset | ClassificationDataset]] = {
    "msrvtt": msrvtt, "didemo": didemo, "activitynet": activitynet, "lsmdc": lsmdc, "captions": captions,
    "kinetics": kinetics, "ssv2": ssv2, "labels": labels,
}


def build_dataset(name: str, annotation: PathLike, video_root: PathLike, split: str = "train",
                  **kwargs: Any) -> RetrievalDataset | ClassificationDataset:
    """The dataset called `name` (see `DATASETS`); `annotation` is its annotation folder or file."""
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")
    return DATASETS[name](annotation, video_root, split=split, **kwargs)
