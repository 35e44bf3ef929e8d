"""`vidslim bench`: the JSON contract, the per-layer table of TempMe on a narrow ViT-B/32, errors on bad input."""

from __future__ import annotations

import json

import pytest

import vidslim.cli.main as cli_main

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
    status, _, err = bench("--model", "clip-tiny", "--method", "rlt+tempme", "--no-time")
    assert status == 2 and "'rlt' acts on the video ViT" in err and "pick a method that fits" in err
    status, _, err = bench("--model", "videomae-tiny", "--set", "bogus=1", "--no-time")
    assert status == 2 and "neither a method option" in err
