"""Transforms on uint8 frame tensors: numerics checked by hand and against plain torch references."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidslim.io import transforms as T


def _frames(t: int = 3, h: int = 6, w: int = 8) -> torch.Tensor:
    """[t, h, w, 3] uint8 where pixel (f, y, x, c) = 10f + y + 2x + 3c: every position is tellable."""
    f, y, x, c = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), torch.arange(3), indexing="ij")
    return (10 * f + y + 2 * x + 3 * c).to(torch.uint8)


def test_constants():
    assert T.IMAGENET_MEAN == (0.485, 0.456, 0.406) and T.IMAGENET_STD == (0.229, 0.224, 0.225)
    assert T.CLIP_MEAN == (0.48145466, 0.4578275, 0.40821073)
    assert T.CLIP_STD == (0.26862954, 0.26130258, 0.27577711)
    assert T.STATS["clip"] == (T.CLIP_MEAN, T.CLIP_STD)


def test_normalize_by_hand():
    frames = torch.tensor([[[[0, 51, 255]]]], dtype=torch.uint8)  # [T=1, H=1, W=1, C=3]
    out = T.normalize(frames, mean=(0.5, 0.2, 1.0), std=(0.5, 0.1, 2.0))
    # (0/255 - 0.5)/0.5 = -1; (51/255 - 0.2)/0.1 = 0; (1 - 1)/2 = 0
    assert out.shape == (1, 3, 1, 1) and out.dtype == torch.float32
    assert torch.allclose(out.flatten(), torch.tensor([-1.0, 0.0, 0.0]), atol=1e-6)


def test_normalize_presets_and_layouts():
    frames = _frames()
    mean, std = torch.tensor(T.CLIP_MEAN), torch.tensor(T.CLIP_STD)
    reference = ((frames.float() / 255 - mean) / std).permute(0, 3, 1, 2)  # [T, C, H, W]
    tchw = T.normalize(frames, "clip")
    assert tchw.shape == (3, 3, 6, 8) and torch.allclose(tchw, reference, atol=1e-5)
    cthw = T.normalize(frames, "clip", layout="CTHW")
    assert cthw.shape == (3, 3, 6, 8) and torch.allclose(cthw, reference.transpose(0, 1), atol=1e-5)
    assert cthw.is_contiguous() and tchw.is_contiguous()
    batched = T.normalize(torch.stack([frames, frames]), "imagenet", layout="CTHW")
    assert batched.shape == (2, 3, 3, 6, 8)
    with pytest.raises(ValueError, match="unknown statistics"):
        T.normalize(frames, "kinetics")


@pytest.mark.parametrize("layout", ["TCHW", "CTHW", "THWC"])
def test_normalize_every_byte_value_in_every_channel(layout):
    # all 256 values in each channel, each channel a different permutation of them: float64 reference, 1e-6
    values = torch.arange(256, dtype=torch.uint8)
    frames = torch.stack([values, values.flip(0), values.roll(100)], dim=-1).view(2, 8, 16, 3)
    out = T.normalize(frames, "clip", layout=layout)
    mean, std = torch.tensor(T.CLIP_MEAN, dtype=torch.float64), torch.tensor(T.CLIP_STD, dtype=torch.float64)
    reference = (frames.double() / 255 - mean) / std  # [T, H, W, C]
    reference = {"TCHW": reference.permute(0, 3, 1, 2), "CTHW": reference.permute(3, 0, 1, 2), "THWC": reference}
    assert out.dtype == torch.float32 and out.is_contiguous()
    assert torch.allclose(out.double(), reference[layout], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="layout"):
        T.normalize(frames, "clip", layout="HWTC")


def test_to_float():
    frames = _frames()
    out = T.to_float(frames)
    assert out.shape == (3, 3, 6, 8) and torch.equal(out, frames.permute(0, 3, 1, 2).float() / 255)
    already_float = frames.float()
    T.to_float(already_float)
    assert torch.equal(already_float, frames.float())  # the input is never modified


def test_hflip_mirrors_columns():
    frames = _frames()
    flipped = T.hflip(frames)
    assert torch.equal(flipped[:, :, 0], frames[:, :, -1]) and torch.equal(flipped[:, :, 7], frames[:, :, 0])
    assert torch.equal(T.hflip(flipped), frames)
    g = torch.Generator().manual_seed(0)
    outcomes = {torch.equal(T.random_hflip(frames, 0.5, g), frames) for _ in range(20)}
    assert outcomes == {True, False}
    assert torch.equal(T.random_hflip(frames, 0.0), frames)


def test_center_crop_position():
    frames = _frames(h=6, w=8)
    out = T.center_crop(frames, 4)  # top (6-4)//2 = 1, left (8-4)//2 = 2
    assert torch.equal(out, frames[:, 1:5, 2:6])
    assert torch.equal(T.center_crop(frames, (3, 5)), frames[:, 1:4, 1:6])  # top 1, left 1
    with pytest.raises(ValueError, match="does not fit"):
        T.center_crop(frames, 7)


def test_random_crop_same_window_for_all_frames():
    frames = _frames(h=6, w=8)
    seen = set()
    for seed in range(30):
        out = T.random_crop(frames, 4, torch.Generator().manual_seed(seed))
        # pixel value at (f, 0, 0, 0) = 10f + top + 2 * left tells the offset, the same for every frame
        corner = (out[:, 0, 0, 0].int() - 10 * torch.arange(3)).unique()
        assert len(corner) == 1
        top_left = [(t, left) for t in range(3) for left in range(5) if t + 2 * left == int(corner)]
        assert any(torch.equal(out, frames[:, t : t + 4, left : left + 4]) for t, left in top_left)
        seen.add(int(corner))
    assert len(seen) > 3


def test_resize_short_side_matches_interpolate():
    frames = torch.randint(0, 256, (2, 30, 40, 3), dtype=torch.uint8)
    out = T.resize_short_side(frames, 15)
    assert out.shape == (2, 15, 20, 3) and out.dtype == torch.uint8
    reference = F.interpolate(frames.permute(0, 3, 1, 2).float(), size=(15, 20), mode="bilinear",
                              antialias=True, align_corners=False).round().clamp(0, 255).to(torch.uint8)
    assert (out.int() - reference.permute(0, 2, 3, 1).int()).abs().max() <= 1
    assert T.resize(frames, (10, 7)).shape == (2, 10, 7, 3)
    assert T.resize(frames, 30) is frames  # already that size
    constant = torch.full((1, 9, 12, 3), 77, dtype=torch.uint8)
    assert (T.resize(constant, 4) == 77).all()


def test_pipeline():
    frames = torch.randint(0, 256, (4, 36, 48, 3), dtype=torch.uint8)
    out = T.VideoTransform(size=24, stats="clip", layout="CTHW")(frames)
    assert out.shape == (3, 4, 24, 24)
    expected = T.normalize(T.center_crop(T.resize_short_side(frames, 24), 24), "clip", layout="CTHW")
    assert torch.equal(out, expected)
    train = T.VideoTransform(size=24, train=True)(frames, torch.Generator().manual_seed(0))
    assert train.shape == (4, 3, 24, 24)
