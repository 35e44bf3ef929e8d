"""benchmarks/clip_rlt_speed.py at frame counts other than the paper's 12: TempMe groups that fit, and --set."""

from __future__ import annotations

import math
from types import ModuleType

import pytest
import torch

from benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_benchmark("clip_rlt_speed")


def test_groups_join_every_frame_by_the_last_merge_layer(script: ModuleType) -> None:
    assert script.tempme_groups(12) == (2, 2, 3)  # the paper's
    assert script.tempme_groups(8) == (2, 2, 2) and script.tempme_groups(16) == (2, 2, 4)
    assert script.tempme_groups(6) == (2, 1, 3) and script.tempme_groups(7) == (1, 1, 7)
    assert all(math.prod(script.tempme_groups(f)) == f for f in range(1, 33))


def test_settings_go_through_the_registry(script: ModuleType) -> None:
    methods = script.reductions(8, [])
    assert [type(r).__name__ for r in methods["rlt+tempme"]] == ["RLT", "TempMe"] and methods["dense"] == []
    assert methods["tempme"][0].groups == (2, 2, 2) and methods["tempme"][0].r == 10  # clip-b16's paper r
    assert methods["tempme"][0] is not methods["rlt+tempme"][1]  # one object per model: TempMe holds its tables
    given = script.reductions(8, ["tempme.groups=4,2,1", "tau=0.05"])
    assert given["tempme"][0].groups == (4, 2, 1) and given["rlt"][0].tau == 0.05
    with pytest.raises(SystemExit, match=r"clip_rlt_speed\.py: --set nope=\.\.\.: 'nope' is neither"):
        script.reductions(8, ["nope=1"])


@pytest.mark.slow  # four CLIP B/16 models and one 8-frame forward: several seconds
def test_eight_frames_build_and_run(script: ModuleType) -> None:
    models = script.build_models(8, [])
    video = torch.randn(1, 8, 3, 224, 224)
    with torch.inference_mode():
        out = models["rlt+tempme"].encode_video(video)
    assert out.shape[0] == 1 and torch.isfinite(out).all()
    with pytest.raises(SystemExit, match=r"groups \[3, 3, 1\] \(product 9\) do not divide 8 frames"):
        script.build_models(8, ["tempme.groups=3,3,1"])
