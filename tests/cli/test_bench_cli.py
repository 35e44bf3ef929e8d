"""`vidslim bench`: the JSON contract, the per-layer table of TempMe on a narrow ViT-B/32, errors on bad input."""

from __future__ import annotations

import json

import pytest
import torch

import vidslim.cli.main as cli_main
from vidslim.errors import ConfigError

NARROW = ["--set", "vision_width=64", "--set", "vision_heads=1", "--set", "vision_mlp_dim=64", "--set", "text_layers=1"]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run `vidslim bench ARGS...` in-process (registering the command if main does not list it yet)."""
    if "bench" not in cli_main._COMMANDS:
        monkeypatch.setattr(cli_main, "_COMMANDS", (*cli_main._COMMANDS, "bench"))

    def run(*args: str) -> tuple[int, str, str]:
        status = cli_main.main(["bench", *args])
        out = capsys.readouterr()
        return status, out.out, out.err

    return run


def test_json_contract_and_tempme_table(bench) -> None:
    status, out, _ = bench(
        "--model",
        "clip-b32",
        "--method",
        "tempme",
        "--batch",
        "2",
        "--frames",
        "12",
        "--repeat",
        "1",
        "--warmup",
        "0",
        "--full-last-layer",
        "--json",
        *NARROW,
    )
    assert status == 0
    result = json.loads(out)
    assert {"model", "method", "frames", "batch", "gflops_per_video", "videos_per_s", "latency_ms", "layers"} <= set(
        result
    )
    assert (result["model"], result["method"], result["frames"], result["batch"]) == ("clip-b32", "tempme", 12, 2)
    assert result["videos_per_s"] > 0 and result["latency_ms"] > 0
    layers = result["layers"]
    keys = {"layer", "sequences", "tokens_attn", "tokens_out", "gflops", "density"}
    assert [set(row) for row in layers] == [keys] * 12 and all(row["density"] == 1.0 for row in layers)
    # spec tempme §1.7, per video: sequences, tokens into attention (sequences x per-sequence count), tokens out
    assert [(r["sequences"], r["tokens_attn"], r["tokens_out"]) for r in layers[7:]] == [
        (12, 432, 408),
        (6, 288, 264),
        (3, 186, 168),
        (1, 118, 107),
        (1, 107, 97),
    ]
    assert result["gflops_per_video"] > sum(r["gflops"] for r in layers) > 0  # the total adds the stem


def test_text_table_with_cls_readout(bench) -> None:
    status, out, _ = bench("--model", "clip-b32", "--method", "tome", "--r", "4", "--frames", "2", "--no-time", *NARROW)
    assert status == 0
    lines = out.splitlines()
    assert "method tome" in lines[0] and "2 frames x batch 1" in lines[0]
    rows = [line.split() for line in lines if line.split() and line.split()[0].isdigit()]
    assert [int(r[0]) for r in rows] == list(range(12))
    assert rows[0][1:5] == ["2", "50", "100", "92"] and rows[-1][4] == "2"  # the last block outputs the 2 CLS
    assert "GFLOPs per video" in out and "latency" not in out


def test_errors_name_the_fix(bench) -> None:
    status, _, err = bench("--method", "tempmee", "--no-time", *NARROW)
    assert status == 2 and "did you mean tempme" in err
    status, _, err = bench("--method", "tempme", "--set", "vision_layers=4", "--no-time", *NARROW)
    assert status == 2 and "do not fit a model of 4 layers" in err
    status, _, err = bench("--set", "vision_layers", "--no-time")
    assert status == 2 and "KEY=VALUE" in err


TINY_SVITT = ["--set", "num_frames=8", "--set", "block=2", "--set", "random=1", "--no-time"]


def test_svitt_density_column_and_json(bench) -> None:
    # videomae-tiny with 8 frames: 16 tokens, blocks of 2 -> 8 blocks, own + 1 random: 4 of 16 keys per query
    status, out, _ = bench("--model", "videomae-tiny", "--method", "svitt", *TINY_SVITT, "--json")
    assert status == 0
    result = json.loads(out)
    assert [row["density"] for row in result["layers"]] == [0.25, 0.25] and result["video"] is None
    status, out, _ = bench("--model", "videomae-tiny", "--method", "svitt", *TINY_SVITT)
    lines = out.splitlines()
    assert "input: random" in lines[1] and lines[2].split()[-1] == "density"
    assert [line.split()[-1] for line in lines[3:5]] == ["0.250", "0.250"]


def test_rlt_defaults_to_a_real_sample_video(bench) -> None:
    status, out, _ = bench(
        "--model", "videomae-tiny", "--method", "rlt+tokenprune", "--set", "num_frames=16",
        "--set", "tokenprune.layers=[0]", "--set", "keep=0.5", "--no-time", "--json",
    )  # fmt: skip
    assert status == 0
    result = json.loads(out)
    assert result["video"].endswith("bikes.mp4")
    first, second = result["layers"]
    assert 0 < first["tokens_attn"] < 32  # 8 tubelets x 2 x 2 patches, the repeats dropped
    assert second["tokens_attn"] == -(-first["tokens_attn"] // 2)  # ceil(0.5 n) kept after layer 0


def test_video_flag_reads_the_given_file(bench, square_video) -> None:
    status, out, _ = bench("--model", "videomae-tiny", "--method", "dense", "--video", str(square_video), "--no-time")
    assert status == 0 and f"input: {square_video}" in out


def test_combinations_and_clear_errors(bench) -> None:
    status, out, _ = bench("--model", "clip-b32", "--method", "tempme+svitt", "--set", "block=8", "--frames", "12",
                           "--no-time", "--json", *NARROW)  # fmt: skip
    assert status == 0
    densities = [row["density"] for row in json.loads(out)["layers"]]
    assert len(densities) == 12 and all(0 < d < 1 for d in densities)
    status, _, err = bench("--model", "videomae-tiny", "--method", "rlt+tempme", "--no-time")
    assert status == 2 and "'tempme' acts on CLIP" in err and "pick a method that fits" in err
    status, _, err = bench("--model", "videomae-tiny", "--set", "bogus=1", "--no-time")
    assert status == 2 and "neither a method setting" in err


TINY_BASE = ["--model", "videomae-tiny", "--set", "depth=4", "--frames", "4", "--warmup", "0", "--repeat", "1"]
# TokenPrune's default layers (3, 6, 9) do not exist in 4 blocks, and a setting that does not fit is refused
TINY_SUITE = [*TINY_BASE, "--set", "tokenprune.layers=[1,2]"]


def test_suite_table_one_row_per_method_dense_first_and_sat_batch(bench) -> None:
    status, out, _ = bench(*TINY_SUITE, "--method", "tome,tokenprune+svitt", "--batch", "1,sat", "--max-batch", "2",
                           "--no-overhead", "--json")  # fmt: skip
    assert status == 0
    result = json.loads(out)
    choice = result["batch_choices"][0]
    assert choice["batch"] in (1, 2) and [b for b, _ in choice["history"]][:1] == [1]
    # batch 1 against 2, interleaved: the throughput gain per round with its quartiles, verdict and load
    gain = choice["gains"][0]
    assert len(choice["gains"]) == 1 and gain["rounds"] == 3 and gain["speedup_q25"] <= gain["speedup_q75"]
    assert "verdict" in gain and "load_before" in gain and "1->2 " in choice["text"]
    rows = result["rows"]
    assert [r["method"] for r in rows] == ["dense", "tome", "tokenprune+svitt"] * 2
    assert [r["batch"] for r in rows] == [1] * 3 + [choice["batch"]] * 3
    assert rows[0]["speedup"] == 1.0 and rows[1]["flop_ratio"] < 1 and rows[1]["time_ms"] > 0
    for row in rows:  # realised: paired speedup x FLOP share, with the rounds' spread and the speedup's verdict
        assert row["realised"] == pytest.approx(row["speedup"] * row["flop_ratio"])
        assert row["realised_q75"] == pytest.approx(row["speedup_q75"] * row["flop_ratio"])
    status, out, _ = bench(*TINY_SUITE, "--method", "all", "--no-overhead")
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("method"))
    assert "speedup" in lines[head] and "realised [IQR]" in lines[head] and lines[head].endswith("reduce")
    assert lines[head + 1].split()[0] == "dense"
    table = lines[head + 2:next(i for i, line in enumerate(lines) if line.startswith(("~x?", "kept:")))]
    assert len(table) >= 4
    for line in (line for line in table if "!" not in line):  # rows that ran (a refused combination says why)
        figures = 3 if "cpu speedup [IQR]" in lines[head] else 2  # the CPU-time column at one CPU thread
        assert line.count("?") + line.count("[") == figures  # every figure marked "~x?" or with its IQR, never bare
    assert "rlt+tokenprune" in out and "bikes.mp4" in lines[1]  # rlt in "all": the sample video for every row


def test_suite_end_to_end_warns_when_decoding_dominates(bench, tmp_path) -> None:
    from vidslim.io.samples import sample_video

    (tmp_path / "bikes.mp4").symlink_to(sample_video("bikes"))
    threads = torch.get_num_threads()
    try:  # one thread: on a busy shared machine, OpenMP waits would make the tiny model look slow
        status, out, err = bench(*TINY_BASE, "--method", "dense,tome", "--end-to-end", str(tmp_path), "--no-overhead",
                                 "--repeat", "3", "--threads", "1")  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert status == 0 and "decode ms/vid" in out and "1 videos decoded" in out
    # a 4-layer 64-wide model on 4 frames of 32 px takes well under the time to decode and resize 4 frames of bikes
    assert "warning: decoding is the bottleneck for dense" in err


def test_suite_bad_lists_name_the_fix(bench) -> None:
    status, _, err = bench(*TINY_SUITE, "--method", "dense,tome", "--batch", "1,big")
    assert status == 2 and "--batch '1,big'" in err
    status, _, err = bench(*TINY_SUITE, "--method", "dense,tome", "--precision", "fp32,fp8")
    assert status == 2 and "fp32,bf16" in err
    status, _, err = bench(*TINY_SUITE, "--precision", "fp16", "--no-time")
    assert status == 2 and "--precision 'fp16'" in err


def test_settings_are_checked_and_typed(bench) -> None:
    status, _, err = bench("--model", "videomae-tiny", "--method", "rlt", "--set", "tau=abc", "--no-time")
    assert status == 2 and "--set tau=abc: tau takes a number (default 0.1)" in err and err.count("\n") == 1
    status, _, err = bench("--model", "clip-tiny", "--method", "tempme", "--set", "tempme.nope=1", "--no-time")
    assert status == 2 and "tempme has no setting 'nope'" in err
    status, _, err = bench("--model", "clip-tiny", "--method", "tempme", "--set", "tempme.groups=a,b", "--no-time")
    assert status == 2 and "groups takes a comma list like 2,2,3" in err


def test_a_checkpoint_folder_tempme_at_8_frames_and_a_card(bench, tmp_path) -> None:
    import vidslim as vs
    from vidslim.bench.card_file import write_card

    folder = vs.save_model(vs.create_model("clip-tiny", vision_layers=4), tmp_path / "clip")
    status, out, _ = bench("--model", str(folder), "--method", "tempme", "--frames", "8", "--set",
                           "tempme.groups=2,2,2", "--set", "tempme.merge_layers=1,2,3", "--set", "tempme.r=1",
                           "--no-time", "--json")  # fmt: skip
    assert status == 0
    result = json.loads(out)
    assert result["frames"] == 8 and "groups=[2, 2, 2]" in result["reduction"][0]
    card = write_card(tmp_path / "card.json", [{"tome": {"r": 2}}], model="clip-tiny")
    status, out, _ = bench("--model", str(folder), "--card", str(card), "--frames", "4", "--no-time", "--json")
    assert status == 0
    rows = json.loads(out)["rows"]
    assert [r["method"] for r in rows] == ["dense", "card"] and rows[1]["flop_ratio"] < 1
    assert rows[1]["speedup"] is None  # --no-time: nothing timed on the suite path either
    # a card tune wrote carries its frames and size: bench times it there unless --frames / --set say otherwise
    tuned = write_card(tmp_path / "tuned.json", [{"tome": {"r": 2}}], target="speedup=2", frames=4,
                       config={"image_size": 112})
    status, out, _ = bench("--model", str(folder), "--card", str(tuned), "--no-time", "--json")
    result = json.loads(out)
    # 112 px in patches of 8: 196 + 1 tokens a frame (32 px would give 17) into every layer's attention, 4 frames
    assert status == 0 and result["frames"] == 4 and result["rows"][0]["tokens"] == 4 * 197
    status, out, _ = bench("--model", str(folder), "--card", str(tuned), "--no-time")
    assert "card: " + str(tuned) + " (tuned for speedup=2 at 4 frames, image_size=112, as the card says)" in out
    status, out, _ = bench("--model", str(folder), "--card", str(tuned), "--frames", "2", "--no-time", "--json")
    assert status == 0 and json.loads(out)["frames"] == 2


def test_tune_plot_end_to_end_on_a_tiny_model(tmp_path, square_video, capsys) -> None:
    import numpy as np
    from PIL import Image

    from vidslim.cli.tune import PLOT_SIZE
    from vidslim.viz.plot import plot_speedup, series_colours

    png = tmp_path / "pareto.png"
    status = cli_main.main(["tune", "--model", "videomae-tiny", "--set", "depth=2", "--frames", "4",
                            "--set", "tokenprune.layers=[0]", "--video",
                            str(square_video), "--video", str(square_video), "--repeat", "3", "--threads", "1",
                            "--plot", str(png), "--json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["plot"] == str(png)
    points = [(p["setting"], p["kept"], p["speedup"], p["q25"], p["q75"], p["reliable"], p["method"])
              for p in out["pareto"]]  # fmt: skip
    assert {p[6] for p in points} >= {"rlt", "tome", "tokenprune", "random"}  # every method that fits the ViT
    assert all(0 < kept <= 1 and q25 <= s <= q75 for _, kept, s, q25, q75, _, _ in points)
    assert out["plot_note"].startswith("2 clip(s): square, square") and "thread" in out["plot_note"]
    with Image.open(png) as image:
        assert image.size == PLOT_SIZE
        pixels = np.asarray(image.convert("RGB"))
    for colour in series_colours(points).values():  # every method's series is drawn
        assert (pixels == colour).all(-1).any()
    # the picture is exactly the plot of the points the JSON reports (rings, grey bars and label placement are
    # checked on hand-built points in tests/viz/test_viz_plot.py, where no neighbour can cover what is probed)
    again = plot_speedup([tuple(p) for p in points], tmp_path / "again.png", title="videomae-tiny: measured speedup "
                         "vs tokens kept", size=PLOT_SIZE, note=out["plot_note"])
    with Image.open(again) as image:
        assert (np.asarray(image.convert("RGB")) == pixels).all()


def test_tune_writes_a_card_bench_reads_at_the_same_frames_and_size(bench, tmp_path, square_video, capsys) -> None:
    """`vidslim tune --out` writes the reducers, the target, the kept spread, what it does not promise, and the frames
    and config fields it was tuned at; `bench --card` then counts the same FLOPs the tune predicted."""
    card = tmp_path / "card.json"
    status = cli_main.main(["tune", "--model", "videomae-tiny", "--set", "depth=2", "--frames", "4", "--method",
                            "tokenprune", "--set", "tokenprune.layers=[0]", "--target", "keep=0.75", "--video",
                            str(square_video), "--out", str(card)])  # fmt: skip
    printed = capsys.readouterr().out
    assert status == 0 and printed.count("not promised: ") == 3 and "tokens kept across clips: min" in printed
    written = json.loads(card.read_text())
    assert written["frames"] == 4 and written["config"] == {"depth": 2} and written["target"] == "keep=0.75"
    assert [list(part) for part in written["reduction"]] == [["token_prune"]] and written["does_not_promise"]
    status, out, _ = bench("--model", "videomae-tiny", "--card", str(card), "--video", str(square_video),
                           "--no-time", "--json")  # fmt: skip
    rows = json.loads(out)["rows"]
    assert status == 0 and json.loads(out)["frames"] == 4
    assert rows[1]["gflops"] == pytest.approx(written["predicted"]["gflops"], rel=1e-6)


@pytest.mark.parametrize(("method", "settings", "says"), [
    ("bogus", [], "--method 'bogus': tune knows the knobs of rlt"),
    ("dense", [], "--method 'dense': tune knows the knobs of rlt"),
    ("tempme", [], "'tempme' acts on CLIP"),  # no TempMe on a video ViT
    ("rlt+bogus", [], "unknown method 'bogus'"),
    ("tome", ["--set", "tome.nope=1"], "tome has no setting 'nope'"),
])
def test_tune_refuses_a_method_before_any_progress_or_clip(method, settings, says, monkeypatch, capsys) -> None:
    import vidslim.bench.tune as tune_module

    def no_clips(*args: object, **kwargs: object) -> None:
        raise AssertionError("clips were read before the method was checked")

    monkeypatch.setattr(tune_module, "read_clips", no_clips)
    status = cli_main.main(["tune", "--model", "videomae-tiny", "--method", method, *settings, "--target", "keep=0.5"])
    out = capsys.readouterr()
    assert status == 2 and out.out == "" and says in out.err
    assert out.err.count("\n") == 1 and "[tune]" not in out.err  # one line, no "tuning ..." before it
    with pytest.raises(ConfigError, match=r"tune knows the knobs|acts on|unknown method|no setting"):
        tune_module.tune("videomae-tiny", ["unread.mp4"], "keep=0.5", method=method,
                         settings=dict(s.split("=") for s in settings[1::2]) or None)


def test_a_busy_machine_times_with_the_idle_cores_and_says_so(bench, monkeypatch) -> None:
    """Without --threads, timing runs on the cores other processes leave idle (one line on stderr says so); with
    --threads the count is the user's; --no-time does not look."""
    import torch

    from vidslim.bench import spread

    threads = torch.get_num_threads()
    monkeypatch.setattr(spread, "usable_cores", lambda: 2)
    looked: list[float] = []
    monkeypatch.setattr(spread, "idle_cores", lambda window=0.5: looked.append(window) or 0.8)
    try:
        torch.set_num_threads(2)
        status, out, err = bench("--model", "videomae-tiny", "--method", "rlt", "--repeat", "3", "--json")
        assert status == 0 and json.loads(out)["threads"] == 1 and torch.get_num_threads() == 1
        assert "vidslim bench: other processes keep about 1.2 of 2 cores busy: timing with 1 thread(s)" in err
        torch.set_num_threads(2)
        status, out, err = bench("--model", "videomae-tiny", "--method", "rlt", "--repeat", "3", "--threads", "2",
                                 "--json")
        assert status == 0 and json.loads(out)["threads"] == 2 and "cores busy" not in err
        looked.clear()
        assert bench("--model", "videomae-tiny", "--method", "rlt", "--no-time")[0] == 0 and not looked
    finally:
        torch.set_num_threads(threads)
