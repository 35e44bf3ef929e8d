"""classify names the classes of classes.json; embed + search ranks as `vidslim eval retrieval` does; Ray writes
the rows of the local command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import vidslim as vs
import vidslim.cli.main as cli_main
from vidslim.data.synth import CLASSES
from vidslim.errors import ConfigError

pytest.importorskip("pyarrow")


def test_classify_names_come_from_classes_json(videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                               ) -> None:
    model = vs.create_model("videomae-tiny", num_classes=len(CLASSES), num_frames=4, image_size=32, patch_size=16)
    vs.save_model(model, tmp_path / "model")
    results = vs.classify_videos(videos, tmp_path / "model", k=3, classes=videos / "classes.json", window=1.0)
    assert [r.error is not None for r in results] == [True] + [False] * 6  # broken.mp4 sorts first
    names = json.loads((videos / "classes.json").read_text())
    for r in results[1:]:
        assert len(r.windows) == 2 and len(r.pooled) == 3
        assert {n for n, _ in r.pooled} <= set(names)
        pooled = np.mean([[dict(w["top"]).get(n, np.nan) for n in names] for w in r.windows], axis=0)
        for name, score in r.pooled:  # pooled = mean of the windows' probabilities (where both windows list it)
            if not np.isnan(pooled[names.index(name)]):
                assert score == pytest.approx(pooled[names.index(name)], abs=1e-6)
    assert cli_main.main(["classify", str(videos / "video_0001.mp4"), "--model", str(tmp_path / "model"),
                          "--classes", str(videos / "classes.json"), "-k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["num_failed"] == 0 and out["videos"][0]["pooled"][0][0] in names
    assert cli_main.main(["classify", str(videos / "video_0001.mp4"), "--model", str(tmp_path / "model"),
                          "--classes", str(tmp_path / "nope.json")]) == 2  # a one-line error


def test_classify_needs_a_head(videos: Path, clip_model: Path) -> None:
    with pytest.raises(ConfigError, match="classification head"):
        vs.classify_videos(videos / "video_0000.mp4", clip_model)


@pytest.mark.slow
def test_text_search_rank1_equals_eval_retrieval_r1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "cli"))
    from train_cli_helpers import run_cli, write_config

    synth, run_dir = tmp_path / "synth", tmp_path / "run"
    config = write_config(tmp_path / "run.yaml", run_dir, synth, "retrieval")
    assert run_cli(monkeypatch, capsys, "train", "retrieval", config, "--json")[0] == 0
    status, out, _ = run_cli(monkeypatch, capsys, "eval", "retrieval", config, "--json", "--no-flops")
    assert status == 0
    r1 = json.loads(out)["metrics"]["t2v/R@1"]
    rows = [json.loads(line) for line in (synth / "annotations.jsonl").read_text().splitlines()]
    test = [r for r in rows if r["split"] == "test"]
    listing = tmp_path / "test.txt"
    listing.write_text("".join(str(synth / r["video"]) + "\n" for r in test))
    vs.embed_videos(listing, run_dir / "model", tmp_path / "index", workers=0)
    index = vs.VideoIndex(tmp_path / "index")
    found = [index.search(r["caption"], k=1)[0].path == str(synth / r["video"]) for r in test]
    assert 100.0 * np.mean(found) == pytest.approx(r1)


@pytest.mark.slow
def test_ray_on_two_local_cpus_writes_the_local_rows(videos: Path, clip_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    import ray

    from vidslim.scale import embed_on_ray

    local = vs.embed_videos(videos, clip_model, tmp_path / "local", method="rlt", window=1.0, workers=0)
    try:
        remote = embed_on_ray(videos, str(clip_model), tmp_path / "ray", address=None, actors=2, method="rlt",
                              window=1.0, videos_per_batch=2)
        wide = embed_on_ray(videos, str(clip_model), tmp_path / "ray_wide", actors=1, cpus_per_actor=2,
                            method="rlt", window=1.0, videos_per_batch=7)
    finally:
        ray.shutdown()
    assert remote.embedded == local.embedded == 6 and remote.failed == local.failed
    # torch threads follow the CPUs each actor reserved (whatever OMP_NUM_THREADS the test runs with)
    assert remote.timing["threads_per_actor"] == [1] and wide.timing["threads_per_actor"] == [2]
    assert 0 < remote.timing["first_result_s"] <= remote.seconds
    a = vs.VideoIndex(tmp_path / "local")
    for folder in ("ray", "ray_wide"):
        b = vs.VideoIndex(tmp_path / folder)
        for name in ("path", "window", "start_s", "end_s", "tokens"):
            assert np.array_equal(a.columns[name], b.columns[name]), (folder, name)
        assert np.abs(a.vectors - b.vectors).max() < 1e-5, folder
