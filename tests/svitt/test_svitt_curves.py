"""Token orderings for SViTT's blocks: raster, Z-curve and Hilbert keys over (t, h, w)."""

from __future__ import annotations

import pytest
import torch

from vidslim.attention.curves import curve_bits, hilbert_keys, order_keys, zcurve_keys
from vidslim.errors import ConfigError, TokenLayoutError
from vidslim.tokens import NO_POSITION
from vidslim.tokens.patchify import grid_positions


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_hilbert_is_a_bijection_whose_steps_are_grid_neighbours(bits: int) -> None:
    side = 1 << bits
    cells = grid_positions(side, side, side)
    keys = hilbert_keys(cells, bits)
    assert sorted(keys.tolist()) == list(range(side**3))
    walk = cells[torch.argsort(keys)]
    steps = (walk[1:] - walk[:-1]).abs().sum(dim=1)
    assert torch.equal(steps, torch.ones_like(steps))  # every step moves to a face neighbour
    assert walk[0].tolist() == [0, 0, 0]


def test_zcurve_interleaves_bits_with_t_most_significant() -> None:
    # on a 2x2x2 cube the Z-curve is 4t + 2h + w; on 4x4x4, bit 1 of each axis lands 3 places higher
    cells = grid_positions(2, 2, 2)
    assert zcurve_keys(cells, 1).tolist() == list(range(8))
    pos = torch.tensor([[0, 0, 2], [0, 2, 0], [2, 0, 0], [1, 1, 1], [3, 3, 3], [0, 1, 2]])
    assert zcurve_keys(pos, 2).tolist() == [8, 16, 32, 7, 63, 8 + 2]


def test_order_keys_raster_curves_and_cls() -> None:
    grid = (2, 3, 5)
    cells = grid_positions(*grid)
    assert torch.equal(order_keys(cells, grid, "raster"), torch.arange(30))
    pos = torch.cat((torch.full((1, 3), NO_POSITION), cells))
    for order in ("raster", "zcurve", "hilbert"):
        keys = order_keys(pos, grid, order)
        assert keys[0] == -1  # CLS sorts first
        assert len(set(keys[1:].tolist())) == 30 and bool((keys[1:] >= 0).all())
    # the curve keys of a non-cube grid are the keys of the enclosing 8x8x8 cube (bits = 3)
    assert curve_bits(grid) == 3
    assert torch.equal(order_keys(cells, grid, "hilbert"), hilbert_keys(cells, 3))


def test_order_keys_errors() -> None:
    with pytest.raises(ConfigError, match="order="):
        order_keys(torch.zeros(2, 3, dtype=torch.long), (1, 1, 1), "spiral")
    with pytest.raises(TokenLayoutError, match="outside"):
        order_keys(torch.tensor([[0, 0, 5]]), (1, 2, 2), "zcurve")
