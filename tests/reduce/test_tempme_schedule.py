"""TempMe's per-layer token tables, exactly as the official code produces them (spec tempme §1.7, §1.7b, §7.1)."""

from __future__ import annotations

import pytest

from vidslim.reduce.tempme_schedule import merge_fraction_from_percent, tempme_schedule


def table(plan: list) -> list[tuple[int, int, int]]:
    return [(p.sequences, p.tokens_attn, p.tokens_out) for p in plan]


def test_b32_default_flags() -> None:
    plan = tempme_schedule(12, 12, 50, r=2, merge_layers=[8, 9, 10], groups=[2, 2, 3], rc=0.3, ri=0.1)
    assert table(plan) == [
        (12, 50, 48), (12, 48, 46), (12, 46, 44), (12, 44, 42), (12, 42, 40), (12, 40, 38),
        (12, 38, 36), (12, 36, 34), (6, 48, 44), (3, 62, 56), (1, 118, 107), (1, 107, 97),
    ]  # fmt: skip
    assert [(p.merge_cross, p.merge_after_attn) for p in plan[8:]] == [(20, 4), (26, 6), (50, 11), (0, 10)]
    assert [p.cls_tokens for p in plan[7:]] == [1, 2, 4, 12, 12]
    assert [p.kind for p in plan] == ["imgme"] * 8 + ["clipme"] * 3 + ["intra"]


def test_b16_default_flags() -> None:
    plan = tempme_schedule(12, 12, 197, r=2, merge_layers=[8, 9, 10], groups=[2, 2, 3], rc=0.3, ri=0.1)
    assert [p.tokens_attn for p in plan[:8]] == [197, 195, 193, 191, 189, 187, 185, 183]
    assert table(plan[8:]) == [(6, 254, 229), (3, 321, 289), (1, 607, 547), (1, 547, 493)]
    assert [(p.merge_cross, p.merge_after_attn) for p in plan[8:]] == [(108, 25), (137, 32), (260, 60), (0, 54)]


def test_b16_paper_settings() -> None:
    plan = tempme_schedule(12, 12, 197, r=10, merge_layers=[8, 9, 10], groups=[2, 2, 3], rc=0.4, ri=0.2)
    assert table(plan) == [
        (12, 197, 187), (12, 187, 177), (12, 177, 167), (12, 167, 157), (12, 157, 147), (12, 147, 137),
        (12, 137, 127), (12, 127, 117), (6, 141, 113), (3, 136, 109), (1, 197, 158), (1, 158, 127),
    ]  # fmt: skip


def test_b32_variant_6_8_10_with_groups_2_3_2() -> None:
    plan = tempme_schedule(12, 12, 50, r=2, merge_layers=[6, 8, 10], groups=[2, 3, 2], rc=0.3, ri=0.1)
    assert table(plan[6:]) == [(6, 54, 49), (6, 49, 45), (2, 95, 86), (2, 86, 78), (1, 110, 99), (1, 99, 90)]
    assert [p.kind for p in plan[6:]] == ["clipme", "intra", "clipme", "intra", "clipme", "intra"]


def test_degenerate_config_merges_nothing() -> None:
    plan = tempme_schedule(12, 12, 50, r=0, merge_layers=[8, 9, 10], groups=[1, 1, 1], rc=0.0, ri=0.0)
    assert all(p.tokens_attn == 50 and p.tokens_out == 50 and p.sequences == 12 for p in plan)


def test_float_then_truncate_arithmetic() -> None:
    assert merge_fraction_from_percent(30) == 0.3
    assert int(168 * 0.3) == 50 and int(118 * 0.1) == 11  # the cases spec §1.6 names


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"groups": [2, 2, 2]}, "cannot be grouped"),
        ({"merge_layers": [9, 8, 10]}, "increasing"),
        ({"merge_layers": [8, 9]}, "same length"),
        ({"merge_layers": [8, 9, 12]}, "increasing"),
    ],
)
def test_bad_configs(kwargs: dict, message: str) -> None:
    args = {"merge_layers": [8, 9, 10], "groups": [2, 2, 3]} | kwargs
    with pytest.raises(ValueError, match=message):
        tempme_schedule(12, 12, 50, r=2, rc=0.3, ri=0.1, **args)
