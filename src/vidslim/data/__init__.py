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

from vidslim._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Record": "vidslim.data.records",
    "read_table": "vidslim.data.records",
    "parse_msrvtt": "vidslim.data.retrieval_formats",
    "parse_didemo": "vidslim.data.retrieval_formats",
    "parse_activitynet": "vidslim.data.retrieval_formats",
    "parse_lsmdc": "vidslim.data.retrieval_formats",
    "parse_captions": "vidslim.data.retrieval_formats",
    "parse_video_list": "vidslim.data.classification_formats",
    "parse_kinetics_csv": "vidslim.data.classification_formats",
    "parse_ssv2": "vidslim.data.classification_formats",
    "parse_labels": "vidslim.data.classification_formats",
    "VideoConfig": "vidslim.data.loading",
    "resolve_video": "vidslim.data.loading",
    "VideoDataset": "vidslim.data.dataset",
    "RetrievalDataset": "vidslim.data.dataset",
    "ClassificationDataset": "vidslim.data.dataset",
    "Collate": "vidslim.data.collate",
    "prepare_video": "vidslim.data.collate",
    "build_dataset": "vidslim.data.builders",
    "DATASETS": "vidslim.data.builders",
    "msrvtt": "vidslim.data.builders",
    "didemo": "vidslim.data.builders",
    "activitynet": "vidslim.data.builders",
    "lsmdc": "vidslim.data.builders",
    "captions": "vidslim.data.builders",
    "kinetics": "vidslim.data.builders",
    "ssv2": "vidslim.data.builders",
    "labels": "vidslim.data.builders",
    "make_synthetic": "vidslim.data.synth",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
