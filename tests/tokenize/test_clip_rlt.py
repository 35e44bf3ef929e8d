"""Per-frame RLT on CLIP (vidslim's extension): which patches each frame keeps, packing, dense equivalence, registry."""

from __future__ import annotations

import pytest
import torch

import vidslim as vs
from vidslim.bench.suite import build_method as build_reduction
from vidslim.errors import ConfigError
from vidslim.io.transforms import CLIP_MEAN, CLIP_STD
from vidslim.reduce.tempme import TempMe
from vidslim.tokenize.frame_rlt import frame_keep_mask
from vidslim.tokenize.rlt import RLT
from vidslim.tokens import NO_POSITION

SIDE, PATCH, GRID = 32, 8, 4  # clip-tiny: 32 px frames, 8 px patches, a 4x4 grid


def tiny_clip(reduction: list | None = None) -> vs.models.CLIP:  # type: ignore[name-defined]
    torch.manual_seed(0)
    return vs.create_model("clip-tiny", reduction=reduction).eval()


def clip_normalise(frames_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [B, T, C, H, W] -> CLIP-normalised float frames."""
    mean = torch.tensor(CLIP_MEAN).view(1, 1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 1, 3, 1, 1)
    return (frames_u8.float() / 255 - mean) / std


def static_frames(frames: int = 4, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """uint8 [B, T, 3, 32, 32]: one random picture repeated over time."""
    g = torch.Generator().manual_seed(seed)
    picture = torch.randint(0, 256, (batch, 1, 3, SIDE, SIDE), generator=g, dtype=torch.uint8)
    return picture.expand(batch, frames, 3, SIDE, SIDE).clone()


def test_static_video_keeps_frame_zero_and_only_cls_later() -> None:
    model = tiny_clip([RLT(tau=0.1)])
    video = clip_normalise(static_frames(4))
    mask = frame_keep_mask(video, 0.1, PATCH)
    assert mask.shape == (1, 4, GRID, GRID)
    assert mask[:, 0].all() and not mask[:, 1:].any()
    tokens = model.embed(video, RLT(tau=0.1).select(video, model.input_spec))
    assert tokens.seqlens == (1 + GRID * GRID, 1, 1, 1)
    assert (tokens.pos[tokens.cu_seqlens[:-1].long()] == NO_POSITION).all()  # every sequence starts with its CLS
    assert model.encode_video(video).shape == (1, model.config.embed_dim)


def test_a_changed_patch_is_kept_in_the_frame_where_it_changes() -> None:
    frames = static_frames(4)
    frames[:, 2:, :, 8:16, 16:24] = 255 - frames[:, 2:, :, 8:16, 16:24]  # patch (h=1, w=2) changes at t=2, stays
    video = clip_normalise(frames)
    mask = frame_keep_mask(video, 0.1, PATCH)
    expected = torch.zeros(1, 4, GRID, GRID, dtype=torch.bool)
    expected[:, 0] = True
    expected[0, 2, 1, 2] = True
    assert torch.equal(mask, expected)
    other = tiny_clip()
    tokens = other.embed(video, RLT(tau=0.1).select(video, other.input_spec))
    assert tokens.seqlens == (17, 1, 2, 1)
    assert tokens.pos[17 + 1 + 1].tolist() == [2, 1, 2]  # frame 2: [CLS, patch (t=2, h=1, w=2)]


def test_threshold_is_in_imagenet_units_whatever_the_normalisation() -> None:
    # a uniform change of d grey levels scores d * 0.017354 in ImageNet units (spec rlt §1.4): 5 drops, 6 keeps
    for step, kept in ((5, False), (6, True)):
        frames = static_frames(2).clamp(10, 240)
        frames[:, 1] += step
        mask = frame_keep_mask(clip_normalise(frames), 0.1, PATCH)
        assert bool(mask[:, 1].all()) is kept and bool(mask[:, 1].any()) is kept


def test_keep_everything_equals_the_dense_clip() -> None:
    dense = tiny_clip()
    video = torch.randn(2, 4, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(4))  # every patch changes
    for tau in (0.0,):  # tau 0 drops only exact repeats: noise keeps every patch
        rlt = tiny_clip([RLT(tau=tau)])
        tokens, reference = rlt.embed_input(video), dense.visual.embed(video)
        assert tokens.seqlens == reference.seqlens
        assert torch.equal(tokens.pos, reference.pos)
        torch.testing.assert_close(tokens.x, reference.x, atol=1e-5, rtol=1e-5)
        with torch.no_grad():
            torch.testing.assert_close(rlt.encode_frames(video), dense.encode_frames(video), atol=1e-5, rtol=1e-5)
    noise = torch.randn(2, 4, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(3))  # nothing repeats
    assert frame_keep_mask(noise, 0.1, PATCH).all()
    with torch.no_grad():
        out = tiny_clip([RLT(tau=0.1)]).encode_video(noise)
        torch.testing.assert_close(out, dense.encode_video(noise), atol=1e-5, rtol=1e-5)


def test_precomputed_mask_and_frame_zero_match_dense() -> None:
    dense, model = tiny_clip(), tiny_clip([RLT(tau=0.1)])
    frames = static_frames(4)
    frames[:, 3, :, :8, :8] = 0  # one patch changes at t=3
    video = clip_normalise(frames)
    mask = frame_keep_mask(video, 0.1, PATCH)
    with torch.no_grad():
        out = model.encode_frames(video, token_mask=mask)
        torch.testing.assert_close(out, model.encode_frames(video))
        # frame 0 keeps every patch, so its embedding is the dense one
        torch.testing.assert_close(out[:, 0], dense.encode_frames(video)[:, 0], atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="token mask has shape"):
        model.encode_frames(video, token_mask=mask[:, :2])
    with pytest.raises(ConfigError, match="needs a tokenizing reducer"):
        dense.encode_frames(video, token_mask=mask)


def test_registry_accepts_rlt_for_clip() -> None:
    reducers = build_reduction("rlt+tempme", "clip-b16")
    assert [type(r) for r in reducers] == [RLT, TempMe]
    assert [type(r) for r in build_reduction("rlt", "clip-b32", tau=0.05)] == [RLT]
    with pytest.raises(ConfigError, match="no length embedding and no random_keep"):
        tiny_clip([RLT(tau=0.1, random_keep=0.5)])
    with pytest.raises(ConfigError, match="'random' acts on"):
        build_reduction("random+tempme", "clip-b16")
