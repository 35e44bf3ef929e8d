"""Loading a checkpoint skips the random init its weights overwrite, and gives the model an ordinary build gives."""

from __future__ import annotations

import contextlib
import unittest.mock
from pathlib import Path

import pytest
import torch

import vidslim as vs
from vidslim.models.skip_init import SkipRandomInit


def test_skip_random_init_turns_random_fills_into_zeros_and_leaves_other_ops_alone() -> None:
    t = torch.full((5,), 7.0)
    with SkipRandomInit():
        torch.nn.init.normal_(t, std=1.0)
        torch.nn.init.kaiming_uniform_(t.view(1, 5))
        t.uniform_()
        assert torch.equal(t, torch.zeros(5))
        torch.nn.init.trunc_normal_(t, std=0.02)  # not dispatched itself: its inner normal_ is, and must end its loop
        assert torch.equal(t, torch.zeros(5))
        torch.nn.init.ones_(t)  # not random: still runs
        assert torch.equal(t, torch.ones(5))
    torch.nn.init.normal_(t)
    assert not torch.equal(t, torch.ones(5))  # outside the mode the fills run again


@pytest.mark.parametrize("lora", [False, True])
def test_a_loaded_checkpoint_equals_one_built_with_random_init_first(tmp_path: Path, lora: bool) -> None:
    model = vs.create_model("clip-tiny", num_frames=4, image_size=32,
                            reduction=[vs.RLT(), vs.TempMe(merge_layers=(0, 1), groups=(2, 2))])
    if lora:
        vs.add_lora(model, rank=2)
    folder = vs.save_model(model, tmp_path / "clip")
    fast = vs.load_model(folder)
    with unittest.mock.patch("vidslim.models.loading.SkipRandomInit", contextlib.nullcontext):
        slow = vs.load_model(folder)
    assert [type(r) for r in fast.reduction] == [type(r) for r in slow.reduction]
    a, b = fast.state_dict(), slow.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    clip = torch.randn(2, 4, 3, 32, 32)  # CLIP's layout: [B, T, C, H, W]
    with torch.inference_mode():
        assert torch.equal(fast.encode_video(clip), slow.encode_video(clip))


def test_weights_the_file_lacks_are_drawn_for_real(tmp_path: Path) -> None:
    saved = vs.create_model("videomae-tiny", num_classes=3)
    folder = vs.save_model(saved, tmp_path / "vm")
    model = vs.load_model(folder, num_classes=5)  # a new head: not in the file, so initialised as a build does
    head = model.head.weight
    assert head.shape[0] == 5 and head.std() > 0 and torch.isfinite(head).all()  # drawn, not zeros or stale memory
    a, b = model.state_dict(), saved.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b if not k.startswith("head."))  # the rest is the file's
