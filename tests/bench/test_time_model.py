"""The time-vs-FLOPs model a time target is solved on: the fixed share is the least-squares fit through (1, 1)."""

from __future__ import annotations

import pytest

from vidslim.bench.time_model import FIXED_RANGE, TimeModel


def test_without_points_time_falls_as_flops_do() -> None:
    model = TimeModel()
    assert model.fixed == 0.0 and model.predict(0.4) == pytest.approx(0.4)
    assert model.flop_ratio_for(0.5) == pytest.approx(0.5)


def test_one_point_gives_the_fixed_share_that_explains_it() -> None:
    model = TimeModel()
    model.add(0.5, 0.6)  # 0.6 = f + (1 - f) * 0.5  ->  f = 0.2
    assert model.fixed == pytest.approx(0.2)
    assert model.predict(0.25) == pytest.approx(0.2 + 0.8 * 0.25)
    assert model.flop_ratio_for(0.5) == pytest.approx((0.5 - 0.2) / 0.8)


def test_several_points_are_averaged_by_least_squares() -> None:
    model = TimeModel()
    model.add(0.5, 0.6)  # alone: f = 0.2
    model.add(0.0, 0.3)  # alone: f = 0.3
    # minimise sum ((1-x) f - (y-x))^2: f = (0.5*0.1 + 1*0.3) / (0.25 + 1) = 0.28
    assert model.fixed == pytest.approx(0.28)


def test_points_near_dense_and_wild_ones_do_not_run_away() -> None:
    model = TimeModel()
    model.add(0.995, 2.0)  # says nothing about the slope
    model.add(float("nan"), 0.5)
    assert model.fixed == 0.0
    model.add(0.5, 5.0)  # a wild measurement: clamped
    assert model.fixed == FIXED_RANGE[1]
    assert model.flop_ratio_for(0.1) == pytest.approx(1e-3)  # never a zero or negative FLOP ratio
