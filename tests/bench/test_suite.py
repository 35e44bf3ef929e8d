"""The method suite: which methods "all" means, one row per method with dense first, ratios, table, compile."""

from __future__ import annotations

import pytest
import torch

from vidslim.bench.row import set_speedup
from vidslim.bench.spread import MachineLoad, PairedRatio
from vidslim.bench.suite import (
    BenchRow,
    Suite,
    bench_methods,
    format_table,
    resolve_methods,
    shared_settings,
    table_legend,
)
from vidslim.errors import ConfigError

TINY = {"depth": 4}


def test_all_means_every_fitting_method_and_cross_stage_pairs() -> None:
    names = resolve_methods("all", "videomae-tiny")
    assert names[0] == "dense" and len(names) == len(set(names))
    assert {"rlt", "tome", "tokenprune", "svitt", "random", "rlt+tokenprune", "tokenprune+svitt"} <= set(names)
    assert "tempme" not in names  # CLIP only
    assert "tome+tokenprune" not in names and "tokenprune+tome" not in names  # both in-model reducers
    assert not any(n.startswith("random+") for n in names)  # a baseline never joins a pair
    clip = resolve_methods("all", "clip-tiny")
    assert "tempme" in clip and "tempme+svitt" in clip


def test_explicit_lists_put_dense_first_and_reject_bad_names() -> None:
    assert resolve_methods("tome, tokenprune+svitt,dense", "videomae-tiny") == ["dense", "tome", "tokenprune+svitt"]
    with pytest.raises(ConfigError, match="did you mean"):
        resolve_methods("dense,tomee", "videomae-tiny")
    with pytest.raises(ConfigError, match="'all' alone"):
        resolve_methods("all,tome", "videomae-tiny")


def test_one_row_per_method_dense_first_with_fractions() -> None:
    options = {"keep": 0.5, "layers": [0]}
    rows = bench_methods("videomae-tiny", "tokenprune,tome", frames=8, overrides=TINY, options=options,
                         batch=2, warmup=0, repeat=2, overhead=False)  # fmt: skip
    assert [r.method for r in rows] == ["dense", "tokenprune", "tome"]
    dense, prune, _ = rows
    assert (dense.token_fraction, dense.flop_ratio, dense.speedup) == (1.0, 1.0, 1.0)
    # 4 slots x 2 x 2 = 16 tokens; after layer 0 keep 8 for layers 1..3: (16 + 3 x 8) / (4 x 16)
    assert prune.token_fraction == pytest.approx(40 / 64) and prune.flop_ratio < 1
    assert all(r.batch == 2 and r.time_ms > 0 and r.videos_per_s == pytest.approx(2e3 / r.time_ms) for r in rows)
    assert prune.realised == pytest.approx(prune.speedup * prune.flop_ratio)
    lines = format_table(rows).splitlines()
    assert lines[0].split()[:2] == ["method", "kept"] and [line.split()[0] for line in lines[1:4]] == [
        "dense", "tokenprune", "tome",
    ]  # fmt: skip
    assert prune.rounds == 2 and not prune.reliable  # two rounds cannot show a spread: never a plain figure
    assert "~" in lines[2] and lines[-1].startswith("~x?: not a measurement to quote (unreliable: load")
    assert prune.cores >= 1 and prune.verdict.startswith("unreliable")


def test_real_clip_input_and_batches_cut_cyclically() -> None:
    clip = torch.randn(3, 8, 32, 32)  # one [C, T, H, W] clip
    suite = Suite("videomae-tiny", "dense", clip, overrides=TINY)
    assert suite.frames == 8 and suite.video.shape == (1, 3, 8, 32, 32)
    batch = suite.batch_input(3)
    assert batch.shape == (3, 3, 8, 32, 32) and torch.equal(batch[2], clip)
    with pytest.raises(ConfigError, match="one clip"):
        Suite("videomae-tiny", "dense", torch.randn(8, 32, 32), overrides=TINY)


def test_compile_failure_is_a_row_note(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(fn: object, **kwargs: object) -> object:
        raise RuntimeError("no compiler here\nsecond line")

    monkeypatch.setattr(torch, "compile", broken)
    rows = bench_methods("videomae-tiny", "tome", frames=4, overrides=TINY, compile=True, warmup=0, repeat=1)
    assert [r.mode for r in rows] == ["compiled", "compiled"]
    assert all(r.error == "compile failed: RuntimeError: no compiler here" and r.time_ms is None for r in rows)
    assert rows[1].flop_ratio < 1  # counts do not need the compiled model
    table = format_table(rows)
    assert "compile s" in table and table.count("! compile failed") == 2


@pytest.mark.slow
def test_real_compile_reports_first_call_seconds() -> None:
    rows = bench_methods("videomae-tiny", "tome", frames=4, overrides=TINY, compile=True, warmup=1, repeat=2)
    for row in rows:
        assert row.error is None or row.error.startswith("compile failed")
        if row.error is None:
            assert row.compile_s > 0 and row.time_ms > 0


def test_row_json_has_per_video_time() -> None:
    row = BenchRow("tome", batch=4, time_ms=10.0, speedup=float("nan"))
    out = row.to_dict()
    assert out["model_ms_per_video"] == 2.5 and out["speedup"] is None and out["reduction"] == []


def test_no_time_counts_only() -> None:
    rows = bench_methods("videomae-tiny", "tome", frames=4, overrides=TINY, time=False)
    assert all(r.time_ms is None and r.speedup is None and r.overhead_pct is None for r in rows)
    assert rows[1].flop_ratio < 1


def test_a_saved_checkpoint_is_benched_with_its_own_weights(tmp_path: object) -> None:
    import vidslim as vs
    from vidslim.bench.source import ModelSource

    torch.manual_seed(0)
    model = vs.create_model("videomae-tiny", depth=4, num_frames=4)
    folder = vs.save_model(model, tmp_path / "ckpt")  # type: ignore[operator]
    source = ModelSource.open(str(folder))
    assert source.family == "video_vit" and source.base is not None
    suite = Suite(source, "dense,tome", frames=4, options={"r": 2})
    dense = suite.entries["dense"].model
    assert torch.equal(dense.state_dict()["patch_embed.proj.weight"], model.state_dict()["patch_embed.proj.weight"])
    tome = suite.entries["tome"].model
    assert tome.reduction and not dense.reduction
    x = suite.batch_input(1)
    with torch.no_grad():  # the dense copy is the saved model
        assert torch.allclose(dense(x), model.eval()(x), atol=1e-5)


def test_steps_cover_building_counting_and_profiling() -> None:
    """The work before and after the timed rounds reports its progress: every method built and counted (two steps a
    method, ending at the total), then one profiling step a timed method; with time=False nothing is profiled."""
    calls: list[tuple[str, int, int]] = []
    suite = Suite("videomae-tiny", "dense,tome,tokenprune", frames=4, overrides=TINY,
                  options={"tokenprune.layers": (1,)}, steps=lambda *step: calls.append(step))
    assert [c for c in calls if c[0] == "count"] == [("count", i, 6) for i in range(7)]
    calls.clear()
    suite.run(repeat=1, time=False)
    assert calls == []
    suite.run(repeat=1)
    assert calls == [("profile", 0, 3), ("profile", 1, 3), ("profile", 2, 3), ("profile", 3, 3)]


def _timed_row(method: str, paired: PairedRatio, threads: int, device: str = "cpu", **fields: object) -> BenchRow:
    row = BenchRow(method, device=device, token_fraction=0.5, gflops=123.45, flop_ratio=0.5, time_ms=2654.1,
                   overhead_pct=40.7, **fields)  # type: ignore[arg-type]
    set_speedup(row, paired)
    row.threads = threads
    row.set_realised()
    return row


def test_cpu_speedup_column_at_one_cpu_thread_with_its_iqr() -> None:
    load = MachineLoad(before=3.0, after=3.2, cores=2)
    # wall speedups 2, 2.5, 2, 1.6, 2 (IQR 2.00-2.00); CPU speedups 2, 2.2, 2.1, 2.1, 2.0 (IQR 2.00-2.10)
    paired = PairedRatio.of([2.0] * 5, [1.0, 0.8, 1.0, 1.25, 1.0], [2.0, 2.2, 2.1, 2.1, 2.0], [1.0] * 5, load=load)
    same = PairedRatio.of([1.0] * 5, [1.0] * 5, [1.0] * 5, [1.0] * 5, load=load)
    rows = [_timed_row("dense", same, 1), _timed_row("rlt_budget+tokenprune", paired, 1)]
    assert rows[1].cpu_speedup_q25 == pytest.approx(2.0) and rows[1].cpu_speedup_q75 == pytest.approx(2.1)
    lines = format_table(rows).splitlines()
    assert lines[0].split() == ["method", "kept", "GFLOPs", "FLOP", "ratio", "ms", "speedup", "[IQR]", "cpu",
                                "speedup", "[IQR]", "realised", "[IQR]", "reduce"]  # one batch, precision, mode
    assert "2.00x [2.00-2.00]  2.10x [2.00-2.10]  1.00 [1.00-1.00]   40.7%" in lines[2]
    assert max(len(line) for line in lines) <= 120  # the longest method name of "all" and every column
    assert rows[1].to_dict()["cpu_speedup_q75"] == pytest.approx(2.1) and "cpu speedup" in table_legend(rows)
    assert shared_settings(rows) == "batch 1, fp32, eager, "
    # more threads (or a GPU): the timed thread's CPU seconds miss the work, so the column is not shown
    for threads, device in ((2, "cpu"), (1, "cuda")):
        rows = [_timed_row("dense", same, threads, device), _timed_row("tome", paired, threads, device)]
        assert "cpu speedup" not in format_table(rows) and rows[1].cpu_speedup_text() == "-"
        assert "cpu speedup" not in table_legend(rows)


def test_a_scattered_cpu_figure_is_marked_and_settings_that_differ_get_columns() -> None:
    shaky_cpu = PairedRatio.of([2.0] * 5, [1.0] * 5, [1.0, 2.0, 3.0, 4.0, 5.0], [1.0] * 5)
    same = PairedRatio.of([1.0] * 5, [1.0] * 5, [1.0] * 5, [1.0] * 5)
    rows = [_timed_row("dense", same, 1), _timed_row("tome", shaky_cpu, 1),
            _timed_row("dense", same, 1, batch=4), _timed_row("tome", shaky_cpu, 1, batch=4)]
    table = format_table(rows)
    assert "~3.00x?" in table and table.splitlines()[-1].startswith("~x?: not a measurement to quote (the CPU-time")
    assert table.splitlines()[0].split()[:2] == ["method", "batch"] and shared_settings(rows) == "fp32, eager, "
