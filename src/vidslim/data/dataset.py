"""Torch datasets over parsed records: retrieval (text-video pairs, or videos) and classification.

Each item is a dict: `video` (uint8 [T, H, W, 3], or [V, T, H, W, 3] with several views; `Collate` turns a
list of items into model input), `index` (the record or video actually returned), `video_id`, `skipped`
and `valid`, plus `text` (retrieval pairs) or `label` (classification).

Broken videos. A video that is missing or cannot be decoded (`VideoDecodeError`, `SamplingError`, an OS
error) is logged once per process, remembered, and never fatal. With `on_error="next"` (training) the item
is replaced by the next index that loads (deterministic); with `on_error="blank"` (evaluation) the item keeps
its index but gets black frames and `valid=False`, so every caption still has its video and the metric
protocol is unchanged; `on_error="raise"` re-raises. `max_consecutive_errors` failures in a row (a wrong video
root, usually) raise `DataLoadError` instead of silently skipping the whole dataset.

Counting skipped videos. `dataset.skipped` counts the replacements made in this process. DataLoader workers
are separate processes, each with its own copy of the dataset, so with `num_workers > 0` the main process's
`dataset.skipped` stays 0. Instead every item carries `skipped`, the number of broken items passed over (or
1 for a blank item), and `Collate` sums it into `batch["skipped"]`; the training loop adds these up:

    total = 0
    for batch in loader:
        total += batch["skipped"]     # exact with any number of workers
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import av
import torch
from torch.utils.data import Dataset

from vidslim.data.loading import VIDEO_EXTENSIONS, VideoConfig, load_views, resolve_video
from vidslim.data.records import PathLike, Record, check_class_list
from vidslim.errors import AnnotationError, ConfigError, DataLoadError, VidslimError

log = logging.getLogger(__name__)

OnError = Literal["next", "blank", "raise"]
# what counts as a broken video (anything else is a bug and propagates)
LOAD_ERRORS: tuple[type[BaseException], ...] = (VidslimError, OSError, av.FFmpegError)


class VideoDataset(Dataset[dict[str, Any]]):
    """Shared part of every dataset: resolve, decode and sample a video; skip and count broken ones.

    Subclasses say which record item `i` shows (`_record`) and what else the item holds (`_fields`).
    """

    def __init__(
        self,
        records: Sequence[Record],
        video_root: PathLike | None,
        config: VideoConfig | None = None,
        on_error: OnError = "next",
        max_consecutive_errors: int = 32,
        extensions: tuple[str, ...] = VIDEO_EXTENSIONS,
    ) -> None:
        if not records:
            raise AnnotationError("the annotation gave no records (an empty file, or a split filter that matched "
                                  "nothing)")
        if on_error not in ("next", "blank", "raise"):
            raise ConfigError(f"on_error must be 'next', 'blank' or 'raise', got {on_error!r}")
        self.records = list(records)
        self.video_root = Path(video_root) if video_root is not None else None
        self.config = config if config is not None else VideoConfig()
        if on_error == "blank" and self.config.frame_shape() is None:
            raise ConfigError("on_error='blank' needs VideoConfig.num_frames and size (to know the blank's shape)")
        self.on_error = on_error
        self.max_consecutive_errors = max(1, int(max_consecutive_errors))
        self.extensions = tuple(extensions)
        self.epoch = 0
        self.skipped = 0
        self._bad: dict[tuple[Any, ...], str] = {}  # video key -> why it failed (this process)
        self._paths: dict[str, Path] = {}

    # --- what subclasses provide -------------------------------------------------------------------------
    def __len__(self) -> int:
        raise NotImplementedError

    def _record(self, index: int) -> Record:
        """The record whose video item `index` shows."""
        raise NotImplementedError

    def _fields(self, index: int) -> dict[str, Any]:
        """Everything but the video for item `index` (text, label, ids)."""
        raise NotImplementedError

    # --- shared --------------------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Set the epoch mixed into per-item seeds (only with `VideoConfig.seed`); call it every epoch."""
        self.epoch = int(epoch)

    def video_path(self, record: Record) -> Path:
        """The file of `record` (cached per process)."""
        path = self._paths.get(record.video)
        if path is None:
            path = resolve_video(self.video_root, record.video, self.extensions)
            self._paths[record.video] = path
        return path

    def load_video(self, index: int) -> torch.Tensor:
        """Frames of item `index`, or the error that stops them (re-raised from a remembered failure)."""
        record = self._record(index)
        reason = self._bad.get(record.video_key)
        if reason is not None:
            raise _KnownBad(reason)
        path = self.video_path(record)
        return load_views(path, record, self.config, self.config.generator(self.epoch, index))

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        index %= len(self)
        limit = min(self.max_consecutive_errors, len(self))
        errors: list[str] = []
        for attempt in range(limit):
            current = (index + attempt) % len(self)
            try:
                video = self.load_video(current)
            except (*LOAD_ERRORS, _KnownBad) as error:
                errors.append(self._failed(current, error))
                if self.on_error == "raise":
                    if isinstance(error, _KnownBad):
                        raise DataLoadError(errors[-1]) from error
                    raise
                self.skipped += 1
                if self.on_error == "blank":
                    shape = self.config.frame_shape()
                    assert shape is not None
                    return self._item(index, torch.zeros(shape, dtype=torch.uint8), skipped=1, valid=False)
                continue
            return self._item(current, video, skipped=attempt, valid=True)
        raise DataLoadError(
            f"{limit} videos in a row failed to load, from item {index} on; the video root "
            f"({self.video_root}) or the extensions may be wrong. First error: {errors[0]}"
        )

    def _failed(self, index: int, error: BaseException) -> str:
        """Log a failure the first time its video fails in this process; return the reason."""
        record = self._record(index)
        if isinstance(error, _KnownBad):
            return str(error)
        reason = f"{type(error).__name__}: {error}"
        self._bad[record.video_key] = reason
        log.warning("skipping video %r (item %d): %s", record.video, index, reason)
        return reason

    def _item(self, index: int, video: torch.Tensor, skipped: int, valid: bool) -> dict[str, Any]:
        item = self._fields(index)
        item.update(video=video, index=index, skipped=skipped, valid=valid)
        return item


class _KnownBad(Exception):
    """A video that already failed in this process; carries the first failure's reason."""


class RetrievalDataset(VideoDataset):
    """Text-video retrieval over caption records, with the caption <-> video mapping evaluation needs.

    Videos are the distinct (video_id, file, start, end) of the records, in order of first appearance.
    `captions[i]` is record i's text and `text_to_video[i]` the index of its video; `video_to_texts()` the
    inverse. unit="pair" (training, and the 1k-A test protocol): item i is record i, its video and its text.
    unit="video" (evaluation with several captions per video): item j is video j, decoded once; encode
    `captions` separately and score with `vidslim.tasks.metrics.retrieval_metrics(sim, text_to_video)`.
    """

    def __init__(
        self,
        records: Sequence[Record],
        video_root: PathLike | None,
        config: VideoConfig | None = None,
        unit: Literal["pair", "video"] = "pair",
        **kwargs: Any,
    ) -> None:
        super().__init__(records, video_root, config, **kwargs)
        if unit not in ("pair", "video"):
            raise ConfigError(f"unit must be 'pair' or 'video', got {unit!r}")
        missing = [i for i, r in enumerate(self.records) if not r.caption]
        if missing:
            raise AnnotationError(f"retrieval records need captions; record {missing[0]} ({self.records[missing[0]]})"
                                  " has none")
        self.unit = unit
        self.captions: list[str] = [r.caption or "" for r in self.records]
        first: dict[tuple[Any, ...], int] = {}
        mapping = []
        for record in self.records:
            mapping.append(first.setdefault(record.video_key, len(first)))
        self.text_to_video = torch.tensor(mapping, dtype=torch.long)
        self.videos: list[Record] = [self.records[i] for i in _first_positions(mapping, len(first))]

    @property
    def num_texts(self) -> int:
        return len(self.captions)

    @property
    def num_videos(self) -> int:
        return len(self.videos)

    def video_to_texts(self) -> list[list[int]]:
        """For every video, the indices of its captions (in record order)."""
        groups: list[list[int]] = [[] for _ in self.videos]
        for text, video in enumerate(self.text_to_video.tolist()):
            groups[video].append(text)
        return groups

    def __len__(self) -> int:
        return len(self.records) if self.unit == "pair" else len(self.videos)

    def _record(self, index: int) -> Record:
        return self.records[index] if self.unit == "pair" else self.videos[index]

    def _fields(self, index: int) -> dict[str, Any]:
        if self.unit == "pair":
            return {"text": self.captions[index], "video_index": int(self.text_to_video[index]),
                    "video_id": self.records[index].video_id}
        return {"video_index": index, "video_id": self.videos[index].video_id}


def _first_positions(mapping: list[int], count: int) -> list[int]:
    """For each group 0..count-1, the first position holding it in `mapping`."""
    positions = [-1] * count
    for i, group in enumerate(mapping):
        if positions[group] < 0:
            positions[group] = i
    return positions


class ClassificationDataset(VideoDataset):
    """Video classification over labelled records.

    classes: class names in label order (optional; inferred from the records' `label_name` when every label
    has one). num_classes: given, or one more than the largest label.
    """

    def __init__(
        self,
        records: Sequence[Record],
        video_root: PathLike | None,
        config: VideoConfig | None = None,
        classes: Sequence[str] | None = None,
        num_classes: int | None = None,
        **kwargs: Any,
    ) -> None:
        check_class_list(classes, "ClassificationDataset")
        super().__init__(records, video_root, config, **kwargs)
        unlabelled = [i for i, r in enumerate(self.records) if r.label is None]
        if unlabelled:
            raise AnnotationError(f"classification records need labels; record {unlabelled[0]} "
                                  f"({self.records[unlabelled[0]].video}) has none (a test split without labels?)")
        self.labels = torch.tensor([r.label for r in self.records], dtype=torch.long)
        largest = int(self.labels.max()) + 1
        if classes is None:
            names = {int(r.label): r.label_name for r in self.records if r.label is not None}  # type: ignore[misc]
            if len(names) == largest and all(names.values()):
                classes = [str(names[i]) for i in range(largest)]
        self.classes = list(classes) if classes is not None else None
        self.num_classes = num_classes or (len(self.classes) if self.classes else largest)
        if largest > self.num_classes:
            n = self.num_classes
            bad = next(r for r in self.records if r.label is not None and r.label >= n)
            source = bad.extra.get("source")
            raise AnnotationError(f"{f'{source}: ' if source else ''}label {bad.label} (video {bad.video}) is out of "
                                  f"range for {n} classes (labels 0 to {n - 1}); fix the label, or give the full "
                                  "class list")

    def __len__(self) -> int:
        return len(self.records)

    def _record(self, index: int) -> Record:
        return self.records[index]

    def _fields(self, index: int) -> dict[str, Any]:
        return {"label": int(self.labels[index]), "video_id": self.records[index].video_id}
