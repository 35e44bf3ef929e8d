"""Datasets: annotation formats, video loading with broken-video skipping, batching, synthetic data.

    from vidslim.data import msrvtt, Collate, VideoConfig
    ds = msrvtt("msrvtt_data", "MSRVTT/videos", split="train", config=VideoConfig(num_frames=12, train=True))
    loader = DataLoader(ds, batch_size=32, num_workers=8, collate_fn=Collate(layout="TCHW"))

Layout of the package:
- `records`: `Record` (one annotated video or window) and the shared file readers.
- `retrieval_formats` / `classification_formats`: pure parsers, `parse_msrvtt(...) -> list[Record]` etc.;
  each module docstring describes its file formats exactly.
- `loading`: `VideoConfig` and decoding a record's file into frames (`vidslim.io`), views for testing.
- `dataset`: `RetrievalDataset` (caption <-> video mapping for evaluation), `ClassificationDataset`;
  broken videos are skipped and counted (see its docstring for counting with DataLoader workers).
- `collate`: `Collate`, dense [B, T, C, H, W] / [B, C, T, H, W] batches.
- `builders`: datasets by name and split with the standard file names (`build_dataset`).
- `synth`: `make_synthetic`, moving digits with captions and motion labels (`vidslim data synth`).

Names load lazily, so `import vidslim.data` costs nothing until used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidslim._lazy import lazy_exports

if TYPE_CHECKING:  # the public names: what IDEs read; at run time each module is imported on first use
    from vidslim.data.builders import DATASETS as DATASETS
    from vidslim.data.builders import activitynet as activitynet
    from vidslim.data.builders import build_dataset as build_dataset
    from vidslim.data.builders import captions as captions
    from vidslim.data.builders import didemo as didemo
    from vidslim.data.builders import kinetics as kinetics
    from vidslim.data.builders import labels as labels
    from vidslim.data.builders import lsmdc as lsmdc
    from vidslim.data.builders import msrvtt as msrvtt
    from vidslim.data.builders import ssv2 as ssv2
    from vidslim.data.classification_formats import parse_kinetics_csv as parse_kinetics_csv
    from vidslim.data.classification_formats import parse_labels as parse_labels
    from vidslim.data.classification_formats import parse_ssv2 as parse_ssv2
    from vidslim.data.classification_formats import parse_video_list as parse_video_list
    from vidslim.data.collate import Collate as Collate
    from vidslim.data.collate import prepare_video as prepare_video
    from vidslim.data.dataset import ClassificationDataset as ClassificationDataset
    from vidslim.data.dataset import RetrievalDataset as RetrievalDataset
    from vidslim.data.dataset import VideoDataset as VideoDataset
    from vidslim.data.loading import VideoConfig as VideoConfig
    from vidslim.data.loading import resolve_video as resolve_video
    from vidslim.data.records import Record as Record
    from vidslim.data.records import read_table as read_table
    from vidslim.data.retrieval_formats import parse_activitynet as parse_activitynet
    from vidslim.data.retrieval_formats import parse_captions as parse_captions
    from vidslim.data.retrieval_formats import parse_didemo as parse_didemo
    from vidslim.data.retrieval_formats import parse_lsmdc as parse_lsmdc
    from vidslim.data.retrieval_formats import parse_msrvtt as parse_msrvtt
    from vidslim.data.synth import make_synthetic as make_synthetic

__getattr__, __dir__, __all__ = lazy_exports(__name__)
