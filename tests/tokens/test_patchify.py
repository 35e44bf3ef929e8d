"""patchify / unpatchify and grid positions: exact inverse, Conv3d/Conv2d parity, (t, h, w) raster order."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidslim.errors import TokenLayoutError
from vidslim.tokens import NO_POSITION, flat_index, grid_positions, patchify, unpatchify


@pytest.mark.parametrize(("tubelet", "patch"), [(2, 4), (1, 4), (2, 1), (3, 2)])
def test_round_trip(tubelet: int, patch: int) -> None:
    video = torch.randn(2, 3, 6, 8, 12)
    patches = patchify(video, tubelet, patch)
    assert patches.shape == (2, 6 // tubelet, 8 // patch, 12 // patch, 3 * tubelet * patch * patch)
    assert torch.equal(unpatchify(patches, tubelet, patch), video)


def test_tubelet_flattened_in_c_t_h_w_order_by_hand() -> None:
    video = torch.arange(2 * 2 * 2 * 4, dtype=torch.float32).reshape(1, 2, 2, 2, 4)  # C=2, T=2, H=2, W=4
    patches = patchify(video, tubelet=2, patch=2)  # grid 1 x 1 x 2, 16 values per tubelet
    assert patches.shape == (1, 1, 1, 2, 16)
    expected = [video[0, c, t, h, 2 + w].item() for c in range(2) for t in range(2) for h in range(2) for w in range(2)]
    assert patches[0, 0, 0, 1].tolist() == expected


def test_linear_on_patches_equals_conv3d() -> None:
    torch.manual_seed(0)
    conv = nn.Conv3d(3, 16, kernel_size=(2, 4, 4), stride=(2, 4, 4))
    video = torch.randn(2, 3, 4, 8, 12)
    expected = conv(video).permute(0, 2, 3, 4, 1)  # [B, T', H', W', D]
    got = F.linear(patchify(video, tubelet=2, patch=4), conv.weight.flatten(1), conv.bias)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_per_frame_patches_equal_conv2d() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 16, kernel_size=4, stride=4, bias=False)
    video = torch.randn(2, 3, 3, 8, 12)
    frames = video.transpose(1, 2).reshape(6, 3, 8, 12)  # [B*T, C, H, W]
    expected = conv(frames).permute(0, 2, 3, 1).reshape(2, 3, 2, 3, 16)
    got = F.linear(patchify(video, tubelet=1, patch=4), conv.weight.flatten(1))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_grid_positions_raster_order() -> None:
    pos = grid_positions(2, 2, 3)
    assert pos.dtype == torch.int64 and pos.shape == (12, 3)
    assert pos[:5].tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 1, 0], [0, 1, 1]]
    assert pos[6].tolist() == [1, 0, 0] and pos[-1].tolist() == [1, 1, 2]
    assert flat_index(pos, (2, 2, 3)).tolist() == list(range(12))


def test_positions_name_the_patch_they_came_from() -> None:
    video = torch.randn(1, 3, 4, 8, 12)
    grid = (2, 2, 3)
    flat = patchify(video, tubelet=2, patch=4).reshape(1, -1, 3 * 2 * 4 * 4)
    for row, (t, h, w) in enumerate(grid_positions(*grid).tolist()):
        cube = video[0, :, 2 * t : 2 * t + 2, 4 * h : 4 * h + 4, 4 * w : 4 * w + 4]
        assert torch.equal(flat[0, row], cube.reshape(-1))


def test_flat_index_keeps_no_position() -> None:
    pos = torch.tensor([[1, 0, 2], [NO_POSITION] * 3, [0, 1, 1]])
    assert flat_index(pos, (2, 2, 3)).tolist() == [8, NO_POSITION, 4]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: patchify(torch.zeros(1, 3, 5, 8, 8), 2, 4), "5 frames"),
        (lambda: patchify(torch.zeros(1, 3, 4, 10, 8), 2, 4), "multiple of 4 pixels"),
        (lambda: patchify(torch.zeros(3, 4, 8, 8), 2, 4), r"\[B, C, T, H, W\]"),
        (lambda: unpatchify(torch.zeros(1, 2, 2, 2, 30), 2, 4), "not a multiple"),
        (lambda: flat_index(torch.zeros(4, 2, dtype=torch.long), (1, 1, 1)), r"\[\.\.\., 3\]"),
    ],
)
def test_bad_shapes_raise(call, match: str) -> None:
    with pytest.raises(TokenLayoutError, match=match):
        call()
