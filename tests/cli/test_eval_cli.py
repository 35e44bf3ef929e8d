"""`vidslim eval`: metrics JSON of a trained run that match the run's own final evaluation, and their cost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from train_cli_helpers import records, run_cli, write_config

import vidslim as vs
from vidslim.reduce.tempme import TempMe


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synth")


def test_eval_prints_the_metrics_of_the_trained_retrieval_model(
    tmp_path: Path, synth_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "run.yaml", run_dir, synth_dir, "retrieval")
    assert run_cli(monkeypatch, capsys, "train", "retrieval", config, "--json")[0] == 0
    final = {k: v for k, v in records(run_dir, "eval")[-1].items() if k not in ("kind", "step", "stage")}
    assert final["num_texts"] == final["num_videos"] == 4  # every fifth of the 20 videos

    status, out, _ = run_cli(monkeypatch, capsys, "eval", "retrieval", config, "--json")
    assert status == 0
    result = json.loads(out)
    assert result["checkpoint"] == str(run_dir / "model") and result["split"] == "test"
    assert result["metrics"] == pytest.approx(final)  # the same deterministic evaluation as at the end of training
    assert set(result["metrics"]) >= {"t2v/R@1", "t2v/R@5", "t2v/MdR", "v2t/R@1", "v2t/MnR"}
    assert result["reduction"] == [{"tempme": {"r": 1, "merge_layers": [1], "groups": [2], "rc": 0.3, "ri": 0.1,
                                               "temporal_pos": True, "proportional_attention": True,
                                               "trace_source": False, "num_frames": 4}}]
    merged_flops = result["cost"]["gflops_per_clip"]
    assert merged_flops > 0 and result["cost"]["clips_per_s"] > 0

    # the newest training checkpoint (the last step) gives the same numbers as the exported model
    status, out, _ = run_cli(monkeypatch, capsys, "eval", "retrieval", config, "--checkpoint",
                             run_dir / "checkpoints" / "step_00000006", "--json")
    assert status == 0 and json.loads(out)["metrics"] == pytest.approx(final)

    # the same weights without TempMe: no reducer, more FLOPs per clip; the table form names the metrics
    status, out, _ = run_cli(monkeypatch, capsys, "eval", "retrieval", config, "model.reduction=[]", "--json")
    dense = json.loads(out)
    assert status == 0 and dense["reduction"] == [] and dense["cost"]["gflops_per_clip"] > merged_flops
    status, out, _ = run_cli(monkeypatch, capsys, "eval", "retrieval", config, "--no-flops")
    assert status == 0 and "t2v/R@1" in out and "clips/s" in out and "GFLOPs" not in out

    # the exported folder is a complete model: reducers, word vocabulary, encode_text on strings
    model = vs.load_model(run_dir / "model")
    assert isinstance(model.reduction[0], TempMe)
    assert model.encode_text(["a red 3 moves left, then up"]).shape == (1, model.config.embed_dim)


def test_eval_without_a_trained_model_uses_the_config(
    tmp_path: Path, synth_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "run.yaml", tmp_path / "nothing", synth_dir, "classify")
    status, out, err = run_cli(monkeypatch, capsys, "eval", "classify", config, "--json", "--out",
                               tmp_path / "r.json")
    assert status == 0 and "as the config builds it" in err
    result = json.loads(out)
    assert result["checkpoint"] is None and result["metrics"]["num_videos"] == 4
    assert json.loads((tmp_path / "r.json").read_text()) == result
    status, _, err = run_cli(monkeypatch, capsys, "eval", "classify", config, "--checkpoint", tmp_path / "nowhere")
    assert status == 2 and "neither a vidslim model folder" in err
