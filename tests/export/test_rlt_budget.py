"""RLTBudget: exactly k tubelets per clip, RLT's choice when RLT keeps k, run lengths as RLT's, the static embed
path equal to the mask path."""

from __future__ import annotations

import pytest
import torch

import vidslim as vs
from vidslim.errors import ConfigError
from vidslim.reduce.registry import build_reduction
from vidslim.tokenize.rlt import channels_first
from vidslim.tokenize.rlt_budget import RLTBudget, keep_top, run_lengths_static
from vidslim.tokenize.rlt_mask import keep_mask
from vidslim.tokenize.run_length import run_length_map
from vidslim.tokens.selection import Selection


def _model(frames: int = 8) -> vs.ReducibleModel:
    torch.manual_seed(0)
    return vs.create_model("videomae-tiny", num_frames=frames).eval()  # grid (frames/2, 2, 2)


def _video(batch: int = 3, frames: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, frames, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_budget_keeps_what_threshold_rlt_keeps_at_the_same_count() -> None:
    model = _model()
    spec = model.input_spec
    for seed in range(3):
        video = _video(batch=1, seed=seed)
        video[:, :, 4:] *= 0.05  # the second half barely moves, so RLT drops some of it
        for tau in (0.05, 0.3, 0.8):
            rlt = keep_mask(channels_first(video, spec), tau, spec.tubelet_size, spec.patch_size)
            k = int(rlt.sum())
            assert 4 <= k <= 16
            picked = RLTBudget(tokens=k).select(video, spec)
            assert torch.equal(picked.keep, rlt)


def test_exactly_k_per_clip_first_slot_always_kept() -> None:
    spec = _model().input_spec
    video = _video()
    selection = RLTBudget(keep=0.75).select(video, spec)
    assert selection.keep.shape == (3, 4, 2, 2)
    assert selection.keep.flatten(1).sum(1).tolist() == [12, 12, 12]
    assert selection.keep[:, 0].all()
    assert selection.index.shape == (3, 12)
    assert torch.equal(selection.index, selection.keep.flatten(1).nonzero()[:, 1].view(3, 12))


def test_ties_go_to_the_earlier_tubelet() -> None:
    """A still video scores 0 everywhere after slot 0: the budget takes slot 0, then raster order."""
    spec = _model().input_spec
    still = _video(batch=1)[:, :, :1].expand(1, 3, 8, 32, 32).contiguous()
    selection = RLTBudget(tokens=7).select(still, spec)
    assert selection.index.tolist() == [[0, 1, 2, 3, 4, 5, 6]]
    assert keep_top(torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0]]), 2).tolist() == [[1, 2]]


def test_run_lengths_equal_rlt_run_lengths() -> None:
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(4, 6, 3, 5, generator=gen) < 0.4
    mask[:, 0] = True
    assert torch.equal(run_lengths_static(mask), run_length_map(mask))
    selection = RLTBudget(keep=0.5).select(_video(), _model().input_spec)
    assert torch.equal(selection.size, run_length_map(selection.keep))
    assert selection.size.flatten(1).sum(1).tolist() == [16, 16, 16]  # every tubelet is in one run


def test_static_embed_equals_the_mask_embed() -> None:
    model = _model()
    video = _video()
    selection = RLTBudget(keep=0.5).select(video, model.input_spec)
    static = model.embed(video, selection)
    packed = model.embed(video, Selection(selection.keep, size=selection.size))
    assert static.seqlens == packed.seqlens == (8, 8, 8)
    assert torch.allclose(static.x, packed.x, atol=1e-6)
    assert torch.equal(static.pos, packed.pos) and torch.equal(static.size, packed.size)


def test_length_embed_and_length_pool_run() -> None:
    model = _model()
    model.set_reduction([RLTBudget(keep=0.5, length_embed=True, pool="length")])
    assert model(_video()).shape == (3, 10)


def test_bad_budgets_and_models_are_refused() -> None:
    spec = _model().input_spec
    with pytest.raises(ConfigError, match="first slot's 4"):
        RLTBudget(tokens=3).select(_video(), spec)
    with pytest.raises(ConfigError, match="between 4 and 16"):
        RLTBudget(tokens=17).select(_video(), spec)
    with pytest.raises(ConfigError, match="fraction"):
        RLTBudget(keep=0.0)
    with pytest.raises(ConfigError, match="video ViT"):
        vs.create_model("clip-tiny", reduction=[RLTBudget()])
    with pytest.raises(ConfigError, match="exactly 8 True"):
        RLTBudget(keep=0.5).select(_video(), spec, token_mask=torch.ones(3, 4, 2, 2, dtype=torch.bool))


def test_registered_as_a_method() -> None:
    reducers = build_reduction("rlt_budget+tome", "videomae-tiny", family="video_vit", keep=0.75, r=2)
    assert isinstance(reducers[0], RLTBudget) and reducers[0].keep == 0.75
    with pytest.raises(ConfigError, match="rlt_budget"):
        build_reduction("rlt_budget", "clip-tiny", family="clip")
