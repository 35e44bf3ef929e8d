"""End to end: decoding a folder, timing it per video, and the warning when decoding is the bottleneck."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vidslim.bench.end_to_end import bottleneck_warnings, decode_folder, find_videos
from vidslim.bench.suite import BenchRow
from vidslim.errors import ConfigError, VideoDecodeError
from vidslim.models.registry import spec_of_name


def test_injected_slow_decoder_is_timed_and_broken_files_counted(tmp_path: Path) -> None:
    paths = [tmp_path / f"{name}.mp4" for name in "abc"]
    now = [0.0]

    def decoder(path: Path) -> torch.Tensor:
        now[0] += 0.2  # 200 ms per video
        if path.stem == "b":
            raise VideoDecodeError(path, "corrupt")
        return torch.zeros(3, 4, 8, 8)

    spec = spec_of_name("videomae-tiny", image_size=8, patch_size=8)
    decoded = decode_folder(paths, 4, spec, decoder=decoder, clock=lambda: now[0])
    assert decoded.clips.shape == (2, 3, 4, 8, 8) and [p.stem for p in decoded.paths] == ["a", "c"]
    assert decoded.ms_per_video == pytest.approx(200.0) and list(decoded.failed) == [str(paths[1])]


def test_warning_only_where_decoding_is_slower_than_the_model() -> None:
    fast = BenchRow("tome", batch=4, time_ms=40.0)  # 10 ms per video
    slow = BenchRow("dense", batch=1, time_ms=500.0)
    warnings = bottleneck_warnings([slow, fast, BenchRow("svitt", error="failed")], decode_ms_per_video=200.0)
    assert len(warnings) == 1 and "decoding is the bottleneck for tome" in warnings[0]
    assert "200.0 ms per video" in warnings[0] and "10.0 ms" in warnings[0] and "20.0x" in warnings[0]


def test_folder_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a folder"):
        find_videos(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="holds no videos"):
        find_videos(tmp_path)


def test_real_sample_video_decodes_at_the_model_size(tmp_path: Path) -> None:
    from vidslim.io.samples import sample_video

    (tmp_path / "carphone.mp4").symlink_to(sample_video("carphone"))
    decoded = decode_folder(tmp_path, 4, spec_of_name("clip-tiny"))
    assert decoded.clips.shape == (1, 4, 3, 32, 32) and decoded.clips.dtype == torch.float32
    assert decoded.ms_per_video > 0
