"""Per-frame RLT's keep mask is labelled as reduction time in a profiled pass (`vidslim.bench.overhead`)."""

from __future__ import annotations

import torch

import vidslim as vs
from vidslim.bench.overhead import reduction_overhead

LABEL = "vidslim.reduce.RLT.token_mask"


def test_clip_rlt_mask_time_is_reported_apart_from_the_model() -> None:
    torch.manual_seed(0)
    video = torch.randn(1, 4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    video[:, 1:, :, :16] = video[:, :1, :, :16]  # the top half repeats: RLT drops it in frames 1..3
    for reduction in ([vs.RLT(tau=0.1)], [vs.RLT(tau=0.1), vs.TempMe(r=2, merge_layers=(1,), groups=(2,))]):
        model = vs.create_model("clip-tiny", reduction=reduction, vision_layers=3).eval()
        with torch.no_grad():
            split = reduction_overhead(lambda m=model: m.encode_video(video), model)
        assert split.by_label.get(LABEL, 0.0) > 0.0, split.by_label
        assert 0.0 < split.reduce_ms < split.total_ms
    dense = vs.create_model("clip-tiny", vision_layers=3).eval()
    with torch.no_grad():
        assert reduction_overhead(lambda: dense.encode_video(video), dense).by_label == {}
