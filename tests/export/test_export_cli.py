"""`vidslim export`: writes a checked graph, refuses threshold RLT in one line naming the static method."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidslim.cli.main import main


@pytest.mark.slow
def test_export_writes_a_checked_program(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.pt2"
    code = main(["export", "videomae-tiny", "--method", "rlt_budget+tome", "--set", "keep=0.5", "--set", "r=1",
                 "--set", "num_frames=8", "--out", str(out), "--batch", "2", "--json"])
    assert code == 0 and out.is_file()
    report = json.loads(capsys.readouterr().out)
    assert report["reduction"] == "RLTBudget+ToMe" and report["input_shape"] == [2, 3, 8, 32, 32]
    assert report["max_abs_diff"] <= 1e-4


def test_threshold_rlt_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.onnx"
    assert main(["export", "videomae-tiny", "--method", "rlt", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "rlt_budget" in err and err.count("\n") == 1
    assert not out.exists()


def test_unknown_setting_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.onnx"
    assert main(["export", "videomae-tiny", "--method", "rlt_budget", "--set", "bogus=1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bogus" in err and "keep" in err and err.count("\n") == 1
    assert not out.exists()


def test_a_model_name_alone_builds_dense_and_a_missing_folder_is_refused_first(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vidslim.cli.export import build_model

    model = build_model("videomae-tiny", None, [], seed=0)  # a name has no saved reduction to export
    assert list(model.reduction) == [] and type(model).__name__ == "VideoViT"
    missing = tmp_path / "no" / "such" / "m.onnx"
    assert main(["export", "videomae-tiny", "--method", "tome", "--out", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err and not missing.parent.exists()


def test_dynamic_batch_writes_a_graph_for_any_number_of_clips(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.pt2"
    assert main(["export", "videomae-tiny", "--method", "tome", "--set", "r=1", "--out", str(out),
                 "--dynamic-batch"]) == 0
    assert "input [any, 3, 4, 32, 32]" in capsys.readouterr().out and out.is_file()
    assert main(["export", "videomae-tiny", "--out", str(tmp_path / "n.pt2"), "--dynamic-batch", "--batch", "2"]) == 2
    assert "--dynamic-batch" in capsys.readouterr().err
