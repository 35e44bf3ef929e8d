"""The Ray actors' model load skips the random init a checkpoint overwrites and gives the ordinary load's model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import vidslim as vs
from vidslim.jobs.model_source import resolve_model
from vidslim.scale.model_load import SkipRandomInit, load_job_model


def test_skip_random_init_leaves_random_fills_undone_and_other_ops_alone() -> None:
    t = torch.zeros(5)
    with SkipRandomInit():
        torch.nn.init.normal_(t, std=1.0)
        torch.nn.init.kaiming_uniform_(t.view(1, 5))
        t.uniform_()
        assert torch.equal(t, torch.zeros(5))
        torch.nn.init.ones_(t)  # not random: still runs
        assert torch.equal(t, torch.ones(5))
    torch.nn.init.normal_(t)
    assert not torch.equal(t, torch.ones(5))  # outside the mode the fills run again


@pytest.mark.parametrize("method", [None, "rlt", "dense"])
def test_fast_load_equals_the_ordinary_load(tmp_path: Path, method: str | None) -> None:
    model = vs.create_model("clip-tiny", num_frames=4, image_size=32,
                            reduction=[vs.RLT(), vs.TempMe(merge_layers=(0, 1), groups=(2, 2))])
    vs.save_model(model, tmp_path / "clip")
    fast, name = load_job_model(str(tmp_path / "clip"), method)
    slow, slow_name = resolve_model(str(tmp_path / "clip"), method)
    assert name == slow_name == str(tmp_path / "clip")
    assert [type(r) for r in fast.reduction] == [type(r) for r in slow.reduction]
    a, b = fast.state_dict(), slow.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    clip = torch.randn(2, 4, 3, 32, 32)  # CLIP's layout: [B, T, C, H, W]
    with torch.inference_mode():
        assert torch.equal(fast.encode_video(clip), slow.encode_video(clip))


def test_a_config_name_still_builds_random_weights() -> None:
    torch.manual_seed(0)
    model, name = load_job_model("clip-tiny")
    torch.manual_seed(0)
    expected = vs.create_model("clip-tiny")
    assert name == "clip-tiny"
    a, b = model.state_dict(), expected.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)  # drawn from the same seed, not left as empty memory
