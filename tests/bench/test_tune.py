"""Budget tuning: targets parsed, knobs solved by exact counts, the card rebuilds the same reducers."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from vidslim.bench.source import ModelSource
from vidslim.bench.tune import Tuner, parse_target
from vidslim.errors import ConfigError
from vidslim.reduce.registry import build_reduction

TINY = {"depth": 4, "num_frames": 4}


def test_targets_parse_and_bad_ones_are_one_line() -> None:
    assert parse_target("speedup=2") == ("speedup", 2.0) and parse_target(" keep = 0.5 ") == ("keep", 0.5)
    for bad in ("speed=2", "keep=1.5", "gflops=-1", "ms", "speedup=1e999", "speedup=1.2.3", "ms=nan"):
        with pytest.raises(ConfigError, match="--target"):
            parse_target(bad)


@pytest.fixture(scope="module")
def tuner() -> Tuner:
    torch.manual_seed(0)
    source = ModelSource.open("videomae-tiny", **TINY)
    clips = [source.spec.random(1, 4, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    return Tuner(source, clips, repeat=3)


def test_keep_target_for_tokenprune_lands_on_the_exact_count(tuner: Tuner) -> None:
    result = tuner.solve("tokenprune", "keep=0.75", {"layers": [1]})
    # 16 tokens; pruning after layer 1 keeps ceil-ish keep*16 for layers 2, 3: mean over 4 layers of kept / 16
    kept = (16 + 16 + 2 * round(result.value * 16)) / 64
    assert result.predicted["keep"] == pytest.approx(kept, abs=1 / 64)
    assert result.reached and abs(result.predicted["keep"] - 0.75) <= 0.05 * 0.75
    assert min(result.kept) == max(result.kept)  # content-independent: every clip keeps the same
    rebuilt = build_reduction(result.card, family="video_vit")
    assert type(rebuilt[0]).__name__ == "TokenPrune" and rebuilt[0].keep == pytest.approx(result.value)
    assert result.to_dict()["frames"] == 4 and result.to_dict()["config"] == {"depth": 4}  # what --card reads back


def test_gflops_target_for_tome_is_within_5_percent_or_said_unreachable(tuner: Tuner) -> None:
    dense = tuner.dense.mean_gflops
    result = tuner.solve("tome", f"gflops={0.7 * dense}")
    got = result.predicted["gflops"]
    assert result.knob == "r" and isinstance(result.value, int)
    assert result.reached == (abs(got / (0.7 * dense) - 1) <= 0.05)
    assert result.reached or result.notes  # a miss is said, never silent
    counted = tuner.counts("tome", {"r": result.value}).mean_gflops
    assert got == pytest.approx(counted)  # the prediction is the exact count


def test_speedup_target_measures_and_reports_spread(tuner: Tuner) -> None:
    result = tuner.solve("tome", "speedup=1.2")
    m = result.measured
    assert {"speedup", "speedup_q25", "speedup_q75", "verdict", "reliable", "ms", "dense_ms"} <= set(m)
    assert m["rounds"] in (3, 6, 9) and "speedup" in result.predicted  # chunks of 3 rounds, at most 3 x 3
    assert m["clock"] in ("wall", "cpu") and {"wall_speedup", "wall_verdict", "cpu_ms"} <= set(m)
    assert any("measured_speedup" in step for step in result.steps)
    assert "accuracy" in result.to_dict()["does_not_promise"][0]


def _synthetic_timer(tuner: Tuner, fixed: float) -> tuple[Callable, list[list[float]]]:
    """time_many replaced by exact arithmetic: time ratio = fixed + (1 - fixed) * FLOP ratio, no noise."""
    from vidslim.bench.precise import Measured
    from vidslim.bench.spread import PairedRatio

    calls: list[list[float]] = []

    def time_many(method: str, settings: list[dict]) -> list[Measured]:
        out = []
        for one in settings:
            ratio = fixed + (1 - fixed) * tuner.counts(method, one).mean_gflops / tuner.dense.mean_gflops
            paired = PairedRatio.of([1.0] * 3, [ratio] * 3)
            out.append(Measured(paired, paired, 100.0 * ratio, 100.0 * ratio, "wall"))
        calls.append([one.get("r") for one in settings])
        tuner._dense_ms = 100.0
        return out

    return time_many, calls


@pytest.mark.parametrize("fixed", [0.0, 0.3])
def test_integer_knob_lands_on_the_whole_step_nearest_the_target(tuner: Tuner, monkeypatch: pytest.MonkeyPatch,
                                                                   fixed: float) -> None:
    time_many, calls = _synthetic_timer(tuner, fixed)
    monkeypatch.setattr(tuner, "time_many", time_many)
    want = 1.15
    result = tuner.solve("tome", f"speedup={want}")
    speedups = {}
    for r in range(0, 9):  # every r that runs on 16 tokens, counted exactly
        try:
            counts = tuner.counts("tome", {"r": r})
        except ConfigError:  # an r past the tokens is simply not a candidate
            continue
        speedups[r] = 1 / (fixed + (1 - fixed) * counts.mean_gflops / tuner.dense.mean_gflops)
    nearest = min(speedups, key=lambda r: abs(math.log(speedups[r] / want)))
    assert result.value == nearest
    assert result.measured["speedup"] == pytest.approx(speedups[nearest])
    assert calls[-1] == [nearest]  # the winner is timed once more on its own: that figure is the one reported
    assert any(len(c) == 2 for c in calls[:-1])  # a bracketing pair was timed together
    if fixed:  # the model learnt the share that does not fall with FLOPs
        assert result.measured["fixed_share"] == pytest.approx(fixed, abs=1e-6)


def test_pareto_points_time_each_method_once_and_name_their_series(tuner: Tuner,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from vidslim.bench.pareto import GRID, pareto_note, pareto_points

    time_many, calls = _synthetic_timer(tuner, 0.25)
    monkeypatch.setattr(tuner, "time_many", time_many)
    skipped: dict[str, str] = {}
    assert pareto_points(tuner, ["tokenprune"], skipped=skipped) == [] and not calls
    assert "layer" in skipped["tokenprune"]  # its default layers [3, 6, 9] are past depth 4: said, not drawn
    points = pareto_points(tuner, ["tome", "tokenprune"], options={"tokenprune.layers": [1], "tome.r": 2})
    assert len(calls) == 2  # one interleaved comparison per method, every setting in it
    tome = [p for p in points if p[6] == "tome"]
    assert [p[0] for p in tome] == [f"r={r}" for r in GRID["tome"] if r <= 8][: len(tome)] and tome
    for label, kept, speedup, low, high, reliable, method in points:
        knob = "r" if method == "tome" else "keep"
        value = int(label.split("=")[1]) if knob == "r" else float(label.split("=")[1])
        counts = tuner.counts(method, {knob: value, **({"tokenprune.layers": [1]} if method == "tokenprune" else {})})
        assert kept == pytest.approx(sum(tuner.kept(counts)) / len(tuner.clips))
        assert speedup == pytest.approx(1 / (0.25 + 0.75 * counts.mean_gflops / tuner.dense.mean_gflops))
        assert low <= speedup <= high and reliable
    note = pareto_note(tuner, points)
    assert note.startswith("2 clip(s)") and "load" in note and "unreliable" not in note


@pytest.fixture(scope="module")
def still_tuner() -> Tuner:
    """Two 64 px clips whose left half stands still (every frame repeats frame 0 there): RLT drops those 8 of the
    32 tubelets (4 x 4 patches, 2 in time) and keeps the rest."""
    source = ModelSource.open("videomae-tiny", **TINY, image_size=64)
    clips = []
    for i in range(2):
        clip = source.spec.random(1, 4, generator=torch.Generator().manual_seed(i))  # [1, C, T, H, W]
        clip[:, :, 1:, :, :32] = clip[:, :, :1, :, :32]
        clips.append(clip)
    return Tuner(source, clips, repeat=3)


def test_combination_advice_when_rlt_first_is_cheaper(still_tuner: Tuner) -> None:
    """A FLOP budget above what RLT alone costs is met by RLT with no pruning at all; one below it is met by
    rlt+tokenprune with a milder keep than tokenprune alone needs."""
    from vidslim.bench.tune import combination_note

    assert still_tuner.kept(still_tuner.counts("rlt", {})) == [0.75, 0.75]  # 24 of 32 tubelets
    dense = still_tuner.dense.mean_gflops
    alone = still_tuner.counts("rlt", {}).mean_gflops
    high = still_tuner.solve("tokenprune", f"gflops={0.9 * dense}", {"layers": [1]})
    assert high.reached and alone < high.predicted["gflops"]
    note = combination_note(still_tuner, high)
    assert note is not None and note.startswith(f"RLT alone (default tau) costs {alone:.3g} GFLOPs per clip")
    assert "--method rlt`" in note and "counted, not timed" in note
    low = still_tuner.solve("tokenprune", f"gflops={0.6 * dense}", {"layers": [0]})
    assert low.reached and low.predicted["gflops"] < alone
    note = combination_note(still_tuner, low)
    assert note is not None and note.startswith("rlt+tokenprune reaches the same")
    milder = float(note.split("tokenprune keep=")[1].split(" ")[0])
    assert milder > low.value  # keeps more tokens in the model: the milder pruning
