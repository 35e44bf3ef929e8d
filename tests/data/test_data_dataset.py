"""Datasets over tiny videos: item contents, caption-video mapping, broken videos, views, batching."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from data_videos import FRAMES, LEVELS, SIZE, frame_numbers, which_video
from torch.utils.data import DataLoader

from vidslim.data import builders
from vidslim.data.collate import Collate, prepare_video
from vidslim.data.dataset import ClassificationDataset, RetrievalDataset
from vidslim.data.loading import VideoConfig, resolve_video, three_crops
from vidslim.data.records import Record
from vidslim.errors import AnnotationError, ConfigError, DataLoadError, VideoDecodeError, VideoNotFoundError

CFG = VideoConfig(num_frames=4, size=SIZE)


@pytest.fixture
def videos(level_videos: Callable[..., Path], tmp_path: Path) -> Path:
    """videos/v0.mp4 .. v3.mp4 (levels 0..3) under tmp_path/videos; returns the folder."""
    for k in range(4):
        level_videos(f"v{k}.mp4", k)
    return tmp_path / "videos"


def test_retrieval_pairs_and_mapping(videos: Path) -> None:
    records = [Record("v0", caption="a"), Record("v1", caption="b"), Record("v0", caption="c"),
               Record("v2", caption="d"), Record("v1", caption="e")]
    ds = RetrievalDataset(records, videos, CFG)
    assert ds.captions == ["a", "b", "c", "d", "e"]
    assert ds.text_to_video.tolist() == [0, 1, 0, 2, 1]
    assert ds.video_to_texts() == [[0, 2], [1, 4], [3]]
    assert (ds.num_texts, ds.num_videos, len(ds)) == (5, 3, 5)
    item = ds[3]
    assert item["text"] == "d" and item["video_index"] == 2 and item["index"] == 3 and item["valid"]
    assert item["video"].shape == (4, SIZE, SIZE, 3) and item["video"].dtype == torch.uint8
    assert which_video(item["video"]) == 2
    # evaluation over videos: each video once
    by_video = RetrievalDataset(records, videos, CFG, unit="video")
    assert len(by_video) == 3
    assert [which_video(by_video[j]["video"]) for j in range(3)] == [0, 1, 2]
    assert by_video[1]["video_index"] == 1 and "text" not in by_video[1]


def test_uniform_frames_and_time_windows(videos: Path) -> None:
    ds = RetrievalDataset([Record("v1", caption="x"), Record("v1.mp4", caption="y", start=0.5)], videos, CFG)
    # 4 of 8 frames, middle of each segment: 1, 3, 5, 7
    assert frame_numbers(ds[0]["video"], 1) == [1, 3, 5, 7]
    # window [0.5 s, end) at 8 fps holds frames 4..7: all four
    assert frame_numbers(ds[1]["video"], 1) == [4, 5, 6, 7]
    assert ds.num_videos == 2  # a different window is a different video


def test_missing_and_broken_videos_are_skipped_and_counted(videos: Path) -> None:
    (videos / "bad.mp4").write_bytes(b"\x00\x01garbage" * 50)
    records = [Record("v0", caption="a"), Record("missing", caption="b"), Record("bad", caption="c"),
               Record("v3", caption="d")]
    ds = RetrievalDataset(records, videos, CFG)
    item = ds[1]  # missing -> bad -> v3
    assert item["index"] == 3 and item["text"] == "d" and which_video(item["video"]) == 3
    assert item["skipped"] == 2 and ds.skipped == 2
    assert ds[2]["index"] == 3 and ds.skipped == 3  # 'bad' is remembered and skipped again
    assert ds[0]["skipped"] == 0 and ds.skipped == 3
    blank = RetrievalDataset(records, videos, CFG, on_error="blank")
    item = blank[2]
    assert item["index"] == 2 and item["text"] == "c" and not item["valid"] and item["skipped"] == 1
    assert torch.count_nonzero(item["video"]) == 0 and item["video"].shape == (4, SIZE, SIZE, 3)
    with pytest.raises(VideoDecodeError):
        RetrievalDataset(records, videos, CFG, on_error="raise")[2]


def test_wrong_video_root_fails_fast(tmp_path: Path) -> None:
    records = [Record(f"x{i}", caption="c") for i in range(50)]
    ds = RetrievalDataset(records, tmp_path / "nowhere", CFG, max_consecutive_errors=5)
    with pytest.raises(DataLoadError, match=r"5 videos in a row failed.*video root"):
        ds[0]


def test_skipped_counts_come_back_through_workers(videos: Path) -> None:
    records = [Record("v0", caption="a"), Record("missing", caption="b"), Record("v1", caption="c"),
               Record("gone", caption="d"), Record("v2", caption="e"), Record("v3", caption="f")]
    ds = RetrievalDataset(records, videos, CFG)
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=Collate())
    batches = list(loader)
    assert sum(b["skipped"] for b in batches) == 2
    assert ds.skipped == 0  # the workers counted, not this process
    assert [i for b in batches for i in b["index"].tolist()] == [0, 2, 2, 4, 4, 5]
    assert batches[0]["video"].shape == (2, 4, 3, SIZE, SIZE)


def test_collate_layouts_and_normalisation() -> None:
    video = torch.full((3, 4, 2, 2, 3), 128, dtype=torch.uint8)
    video[..., 1] = 0
    items = [{"video": video[0], "index": 0, "label": 2, "video_id": "a", "skipped": 1, "valid": True},
             {"video": video[1], "index": 5, "label": 0, "video_id": "b", "skipped": 0, "valid": False}]
    batch = Collate()(items)
    assert batch["video"].shape == (2, 4, 3, 2, 2) and batch["video"].dtype == torch.uint8
    assert batch["video"][0, 0, 1].eq(0).all() and batch["video"][0, 0, 0].eq(128).all()
    assert batch["label"].tolist() == [2, 0] and batch["index"].tolist() == [0, 5]
    assert batch["skipped"] == 1 and batch["valid"].tolist() == [True, False] and batch["video_id"] == ["a", "b"]
    clip = Collate(layout="CTHW", normalize="clip")(items)["video"]
    assert clip.shape == (2, 3, 4, 2, 2) and clip.dtype == torch.float32
    assert clip[0, 0].flatten().unique().item() == pytest.approx((128 / 255 - 0.48145466) / 0.26862954, rel=1e-5)
    assert clip[0, 1].flatten().unique().item() == pytest.approx(-0.4578275 / 0.26130258, rel=1e-5)
    assert prepare_video(video[:1], None, "THWC").shape == (1, 4, 2, 2, 3)
    with pytest.raises(ConfigError, match="different shapes"):
        Collate()([items[0], {**items[1], "video": video[1, :2]}])
    with pytest.raises(ConfigError, match="layout"):
        Collate(layout="NCHW")  # type: ignore[arg-type]


def test_three_crops_offsets_along_the_long_side() -> None:
    frames = torch.arange(1 * 4 * 10).reshape(1, 4, 10, 1)  # [T, H=4, W=10, C]
    crops = three_crops(frames, 4)
    assert crops.shape == (3, 1, 4, 4, 1)
    assert [int(c[0, 0, 0, 0]) for c in crops] == [0, 3, 6]  # offsets 0, (10 - 4) // 2, 10 - 4
    tall = frames.transpose(1, 2)  # [T, H=10, W=4, C]: crops move down the height
    assert all(torch.equal(c, tall[:, o : o + 4]) for c, o in zip(three_crops(tall, 4), (0, 3, 6), strict=True))


def test_multi_view_items(level_videos: Callable[..., Path], tmp_path: Path) -> None:
    level_videos("wide.mp4", 2, size=SIZE)
    cfg = VideoConfig(num_frames=2, size=16, num_clips=2, num_crops=3)
    ds = ClassificationDataset([Record("wide", label=1)], tmp_path / "videos", cfg)
    item = ds[0]
    assert item["video"].shape == (6, 2, 16, 16, 3)
    # clip k of K takes floor((i + (k + 1/2) / K) * 8 / 2): clip 0 frames 1, 5 and clip 1 frames 3, 7;
    # views are crop-major, so the clips alternate
    numbers = [frame_numbers(item["video"][v], 2) for v in range(6)]
    assert numbers == [[1, 5], [3, 7]] * 3
    batch = Collate()([item, item])
    assert batch["video"].shape == (2, 6, 2, 3, 16, 16)
    with pytest.raises(ConfigError, match="evaluation"):
        VideoConfig(train=True, num_clips=2)


def test_training_sampling_is_seeded(videos: Path) -> None:
    cfg = VideoConfig(num_frames=2, size=24, train=True, seed=7)
    ds = ClassificationDataset([Record("v1", label=0)], videos, cfg)
    a, b = ds[0]["video"], ds[0]["video"]
    assert torch.equal(a, b)  # same (seed, epoch, index)
    assert a.shape == (2, 24, 24, 3)
    got = set()
    for epoch in range(12):
        ds.set_epoch(epoch)
        got.add(tuple(frame_numbers(ds[0]["video"], 1)))
    assert len(got) > 1 and all(0 <= t < 4 <= u < FRAMES for t, u in got)  # one random frame per segment


def test_classification_classes_and_errors(videos: Path) -> None:
    records = [Record("v0", label=1, label_name="dog"), Record("v1", label=0, label_name="cat")]
    ds = ClassificationDataset(records, videos, CFG)
    assert ds.classes == ["cat", "dog"] and ds.num_classes == 2 and ds[0]["label"] == 1
    assert ClassificationDataset(records, videos, CFG, num_classes=10).num_classes == 10
    with pytest.raises(AnnotationError, match="need labels"):
        ClassificationDataset([Record("v0")], videos, CFG)
    with pytest.raises(AnnotationError, match="out of range"):
        ClassificationDataset([Record("v0", label=5)], videos, CFG, num_classes=3)
    with pytest.raises(AnnotationError, match="no records"):
        ClassificationDataset([], videos, CFG)
    with pytest.raises(ConfigError, match="blank"):
        ClassificationDataset(records, videos, VideoConfig(num_frames=None), on_error="blank")


def test_resolve_video_candidates(tmp_path: Path) -> None:
    (tmp_path / "movie").mkdir()
    for name in ("movie/clip_a.avi", "flat_b.mkv", "abc123.mp4", "exact.webm"):
        (tmp_path / name).write_bytes(b"x")
    assert resolve_video(tmp_path, "movie/clip_a") == tmp_path / "movie/clip_a.avi"
    assert resolve_video(tmp_path, "folder/flat_b") == tmp_path / "flat_b.mkv"  # flattened folder
    assert resolve_video(tmp_path, "v_abc123") == tmp_path / "abc123.mp4"  # ActivityNet id without v_
    assert resolve_video(tmp_path, "exact.webm") == tmp_path / "exact.webm"
    with pytest.raises(VideoNotFoundError, match=r"tried .*nope"):
        resolve_video(tmp_path, "nope")


def test_builders_use_standard_file_names(videos: Path, tmp_path: Path) -> None:
    anno = tmp_path / "msrvtt_data"
    anno.mkdir()
    (anno / "MSRVTT_JSFUSION_test.csv").write_text(
        "key,vid_key,video_id,sentence\nret0,msr1,v1,one\nret1,msr0,v0,zero\n")
    (anno / "MSRVTT_data.json").write_text(json.dumps({"sentences": [
        {"video_id": "v0", "caption": "zero"}, {"video_id": "v1", "caption": "one"},
        {"video_id": "v1", "caption": "uno"}]}))
    (anno / "MSRVTT_train.9k.csv").write_text("video_id\nv0\nv1\n")
    test = builders.msrvtt(anno, videos, split="test", config=CFG)
    assert test.on_error == "blank" and not test.config.train and test.captions == ["one", "zero"]
    assert which_video(test[0]["video"]) == 1
    train = builders.build_dataset("msrvtt", anno, videos, split="train")
    assert train.on_error == "next" and train.config.train and train.num_texts == 3 and train.num_videos == 2
    every = builders.msrvtt(anno, videos, split="test", all_captions=True, config=CFG)
    assert every.unit == "video" and every.text_to_video.tolist() == [0, 0, 1]
    with pytest.raises(ConfigError, match="split"):
        builders.msrvtt(anno, videos, split="val")
    with pytest.raises(ConfigError, match="unknown dataset"):
        builders.build_dataset("webvid", anno, videos)
    assert set(builders.DATASETS) >= {"msrvtt", "didemo", "activitynet", "lsmdc", "kinetics", "ssv2"}
    assert LEVELS  # the fixture levels are distinct enough to tell the videos apart
