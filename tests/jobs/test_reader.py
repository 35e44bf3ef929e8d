"""WindowReader: every window of a video read in one pass, handed over prepared or as decoded uint8 frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

import vidslim as vs
from vidslim.jobs.reader import WindowReader, _duration
from vidslim.jobs.windows import WindowPlan


def _model(method: str | None) -> Any:
    torch.manual_seed(0)
    reduction = vs.build_reduction(method, family="clip") if method else None
    return vs.create_model("clip-tiny", num_frames=4, image_size=32, reduction=reduction).eval()


def test_windows_are_the_frames_of_reading_each_window(videos: Path) -> None:
    path = str(videos / "video_0000.mp4")
    spec = _model(None).input_spec
    plan = WindowPlan(0.75, 0.5)
    item = WindowReader([path], spec, plan, decoded=True)[0]
    assert item.error is None and item.video is not None and item.video.dtype == torch.uint8
    assert item.spans == plan.cut(_duration(path)) and len(item.spans) == 4  # 2 s: 0, 0.5, 1.0 and 1.25 s
    alone = torch.stack([spec.read(path, start=s, end=e).frames for s, e in item.spans])
    assert torch.equal(item.video, alone)
    assert item.tokens == [4 * (32 // spec.patch_size) ** 2] * 4


def test_decoded_frames_give_the_mask_and_embeddings_of_prepared_windows(videos: Path) -> None:
    path = str(videos / "video_0001.mp4")
    model = _model("rlt")
    plan = WindowPlan(1.0)
    prepared = WindowReader([path], model.input_spec, plan, model.selector)[0]
    decoded = WindowReader([path], model.input_spec, plan, model.selector, decoded=True)[0]
    assert prepared.video is not None and decoded.video is not None and decoded.video.dtype == torch.uint8
    assert torch.equal(prepared.video, model.input_spec.prepare(decoded.video))
    assert prepared.keep is not None and decoded.keep is not None and torch.equal(prepared.keep, decoded.keep)
    assert prepared.tokens == decoded.tokens and sum(decoded.tokens) < 2 * 4 * 16  # RLT dropped static patches
    with torch.inference_mode():
        a = model.encode_video(prepared.video, token_mask=prepared.keep)
        b = model.encode_video(decoded.video, token_mask=decoded.keep)
    assert torch.equal(a, b)


def test_unreadable_video_is_an_item_with_its_error(videos: Path) -> None:
    item = WindowReader([str(videos / "broken.mp4")], _model(None).input_spec, WindowPlan(1.0), decoded=True)[0]
    assert item.video is None and item.error is not None and "broken.mp4" in item.error
