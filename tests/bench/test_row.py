"""A bench row's realised share: speedup x FLOP ratio, with the paired rounds' spread and the speedup's verdict."""

from __future__ import annotations

import pytest

from vidslim.bench.row import BenchRow, set_speedup
from vidslim.bench.spread import PairedRatio


def _row(speedups: list[float], flop_ratio: float) -> BenchRow:
    row = BenchRow("rlt", flop_ratio=flop_ratio)
    set_speedup(row, PairedRatio.of([2.0] * len(speedups), [2.0 / s for s in speedups]))
    row.set_realised()
    return row


def test_realised_is_speedup_times_flop_ratio_with_the_rounds_spread() -> None:
    row = _row([1.7, 1.9, 2.0, 2.1, 2.3], flop_ratio=0.4)  # median 2.0, q25 1.9, q75 2.1
    assert row.reliable
    assert row.realised == pytest.approx(0.8)
    assert (row.realised_q25, row.realised_q75) == (pytest.approx(0.76), pytest.approx(0.84))
    lo, hi = row.speedup_ci95
    assert row.realised_ci95 == (pytest.approx(lo * 0.4), pytest.approx(hi * 0.4))
    assert row.realised_text() == "0.80 [0.76-0.84]"
    out = row.to_dict()
    assert out["realised_q25"] == pytest.approx(0.76) and len(out["realised_ci95"]) == 2


def test_an_unreliable_speedup_gives_an_unreliable_realised_share() -> None:
    row = _row([1.0, 1.5, 2.0, 3.0, 4.0], flop_ratio=0.4)  # IQR 1.5 on a median of 2: 75% spread
    assert not row.reliable and row.verdict.startswith("unreliable")
    assert row.realised == pytest.approx(0.8) and row.realised_text() == "~0.80?"
    assert row.speedup_text() == "~2.00x?"


def test_no_timing_or_no_count_gives_no_realised_share() -> None:
    untimed = BenchRow("rlt", flop_ratio=0.5)
    untimed.set_realised()
    assert untimed.realised is None and untimed.realised_text() == "-"
    uncounted = _row([2.0, 2.0, 2.0], flop_ratio=float("nan"))
    assert uncounted.realised is None and uncounted.to_dict()["realised_q25"] is None
