"""SViTT pruning pictures: `draw_kept_tokens` pixel by pixel on a hand-built keep mask, `keep_mask` on hand-built
tokens, and `TokenPrune(trace=True)` inside the tiny video ViT and CLIP (counts, nesting, no effect on outputs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import vidslim as vs
from vidslim.errors import ConfigError, TokenLayoutError
from vidslim.reduce.svitt_prune import keep_mask
from vidslim.tokens import NO_POSITION, Tokens
from vidslim.viz import draw_kept_tokens, draw_model_pruning, model_kept_tokens

P = 4
OUTLINE = (255, 214, 0)


def noise(t: int, side: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(t, side, side, 3), dtype=np.uint8)


def hand_grey(pixels: np.ndarray) -> np.ndarray:
    """32 + ((77 R + 150 G + 29 B + 128) >> 8) // 2 in every channel."""
    p = pixels.astype(np.int64)
    luma = (77 * p[..., 0] + 150 * p[..., 1] + 29 * p[..., 2] + 128) >> 8
    return np.repeat((32 + luma // 2)[..., None], 3, axis=-1).astype(np.uint8)


def test_pruned_patches_grey_in_every_frame_of_their_tubelet() -> None:
    frames = noise(4, 8)  # tubelets of 2 frames, 2 x 2 patches of 4 px
    keep = np.array([[[True, False], [False, True]], [[False, False], [True, False]]])
    out = draw_kept_tokens(frames, keep, patch=P, tubelet=2).numpy()
    for t in range(4):
        for r in range(2):
            for c in range(2):
                got = out[t, r * P : (r + 1) * P, c * P : (c + 1) * P]
                src = frames[t, r * P : (r + 1) * P, c * P : (c + 1) * P]
                expected = src if keep[t // 2, r, c] else hand_grey(src)
                assert (got == expected).all(), (t, r, c)


def test_outline_on_kept_patches_only() -> None:
    frames = noise(1, 8, seed=1)
    keep = torch.tensor([[[True, False], [False, False]]])
    out = draw_kept_tokens(frames, keep, patch=P, tubelet=1, outline=True).numpy()[0]
    kept = out[:P, :P]
    assert (kept[0] == OUTLINE).all() and (kept[:, -1] == OUTLINE).all()
    assert (kept[1:-1, 1:-1] == frames[0, 1 : P - 1, 1 : P - 1]).all()
    assert (out[P:, :] == hand_grey(frames[0, P:, :])).all()


def test_keep_mask_from_positions_per_video() -> None:
    """Two videos of two frames each (CLIP layout: one sequence per frame, CLS first); grid (2, 2, 2)."""
    cls = [NO_POSITION] * 3
    pos = torch.tensor([cls, [0, 0, 1], cls, [1, 1, 1], [1, 0, 0], cls, cls, [1, 0, 1]])
    tokens = Tokens(torch.zeros(8, 2), (2, 3, 1, 2), pos)
    mask = keep_mask(tokens, 2, (2, 2, 2))
    expected = torch.zeros(2, 2, 2, 2, dtype=torch.bool)
    expected[0, 0, 0, 1] = expected[0, 1, 1, 1] = expected[0, 1, 0, 0] = expected[1, 1, 0, 1] = True
    assert torch.equal(mask, expected)


def test_trace_in_the_video_vit() -> None:
    torch.manual_seed(0)
    prune = vs.TokenPrune(layers=(0, 1), keep=0.5)
    model = vs.create_model("videomae-tiny", reduction=[prune]).eval()  # 4 x 32 x 32, tubelet 2, patch 16: (2, 2, 2)
    frames = torch.from_numpy(noise(4, 32, seed=2))
    assert prune.trace is False and prune.kept == {}
    masks = model_kept_tokens(model, frames)
    assert prune.trace is False  # switched on for that forward only
    assert sorted(masks) == [0, 1] and masks[0].shape == (2, 2, 2)
    assert int(masks[0].sum()) == 4 and int(masks[1].sum()) == 2  # ceil(0.5 · 8), then ceil(0.5 · 4)
    assert not (masks[1] & ~masks[0]).any()  # pruning only removes
    drawn = draw_model_pruning(model, frames)
    pixels = masks[1].repeat_interleave(2, 0).repeat_interleave(16, 1).repeat_interleave(16, 2).numpy()
    out = drawn[1].numpy()
    assert (out[pixels] == frames.numpy()[pixels]).all()
    assert (out[~pixels] == hand_grey(frames.numpy())[~pixels]).all()


def test_trace_does_not_change_outputs_and_follows_clip_frames() -> None:
    torch.manual_seed(0)
    prune = vs.TokenPrune(layers=(0,), keep=0.3)
    model = vs.create_model("clip-tiny", reduction=[prune], vision_layers=3).eval()
    video = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        plain = model.encode_video(video)
        prune.trace = True
        traced = model.encode_video(video)
    assert torch.equal(plain, traced)
    mask = prune.kept[0]
    assert mask.shape == (2, 4, 4, 4)  # two videos, 4 frames of 4 x 4 patches
    assert (mask.flatten(2).sum(-1) == math.ceil(0.3 * 16)).all()  # every frame prunes on its own


def test_errors() -> None:
    with pytest.raises(TokenLayoutError, match=r"prune\.kept"):
        draw_kept_tokens(noise(4, 8), torch.ones(2, 3, 2, dtype=torch.bool), patch=P, tubelet=2)
    with pytest.raises(ConfigError, match="TokenPrune"):
        draw_model_pruning(vs.create_model("videomae-tiny").eval(), noise(4, 32))
    with pytest.raises(ConfigError, match="positions"):
        keep_mask(Tokens(torch.zeros(3, 2), (3,)), 1, (1, 1, 3))
