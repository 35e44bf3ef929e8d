"""embed -> Parquet rows -> search: rows per window, unreadable videos named and counted, resume after SIGKILL,
search by text / video / vector, FAISS against exact search, and the commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import vidslim as vs
import vidslim.cli.main as cli_main
from vidslim.errors import ConfigError
from vidslim.jobs.store import part_name

pytest.importorskip("pyarrow")


def test_rows_hold_every_window_and_name_the_broken_video(videos: Path, clip_model: Path, tmp_path: Path) -> None:
    summary = vs.embed_videos(videos, clip_model, tmp_path / "index", method="rlt", window=1.0, workers=1)
    assert summary.videos == 7 and summary.embedded == 6 and summary.windows == 12  # 2 s videos, 1 s windows
    assert list(summary.failed) == [str(videos / "broken.mp4")] and "not a video" in summary.failed[
        str(videos / "broken.mp4")]
    assert summary.timing["bottleneck"] in ("decode", "model") and summary.videos_per_s > 0
    index = vs.VideoIndex(tmp_path / "index")
    assert len(index) == 12 and index.vectors.shape == (12, 32)
    assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-5)
    assert list(index.columns["start_s"][:2]) == [0.0, 1.0] and list(index.columns["window"][:2]) == [0, 1]
    assert (index.columns["tokens"] <= 4 * 16).all() and (index.columns["tokens"] > 0).all()  # RLT keeps some
    assert index.meta["card"][0].keys() == {"rlt"}
    # a second run finds everything done, the broken video included, and adds nothing
    again = vs.embed_videos(videos, clip_model, tmp_path / "index", method="rlt", window=1.0, workers=0)
    assert again.already_done == 7 and again.embedded == 0 and len(again.failed) == 1
    assert len(vs.VideoIndex(tmp_path / "index")) == 12
    with pytest.raises(ConfigError, match="other settings"):
        vs.embed_videos(videos, clip_model, tmp_path / "index", method="dense", workers=0)


def test_search_by_vector_and_by_example_video(videos: Path, clip_model: Path, tmp_path: Path) -> None:
    vs.embed_videos(videos, clip_model, tmp_path / "index", workers=0, fixed_batch=True, batch_size=4)
    index = vs.VideoIndex(tmp_path / "index")
    hits = index.search(index.vectors[2], k=3)
    assert hits[0].row == 2 and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    by_video = index.search(Path(index.columns["path"][4]), k=1)
    assert by_video[0].path == index.columns["path"][4] and by_video[0].score == pytest.approx(1.0, abs=1e-4)
    broken = videos / "broken.mp4"
    with pytest.raises(ConfigError) as refused:  # the reason once, without the error type and the path again
        index.search(broken, k=1)
    assert str(refused.value).startswith(f"{broken}: cannot search by this video: ")
    assert str(refused.value).count(str(broken)) == 1 and "Error:" not in str(refused.value)


def test_token_budget_and_fixed_batches_write_the_same_rows(videos: Path, clip_model: Path, tmp_path: Path) -> None:
    vs.embed_videos(videos, clip_model, tmp_path / "a", method="rlt", workers=0, token_budget=50)
    vs.embed_videos(videos, clip_model, tmp_path / "b", method="rlt", workers=0, fixed_batch=True, batch_size=3)
    a, b = vs.VideoIndex(tmp_path / "a"), vs.VideoIndex(tmp_path / "b")
    assert np.array_equal(a.columns["tokens"], b.columns["tokens"])
    assert np.abs(a.vectors - b.vectors).max() < 1e-5
    # vs.embed_videos counts FLOPs by default; packed attention counts each window's own length, so the index's
    # total does not depend on how windows were batched, and a window keeping more tokens costs more
    ga, gb = a.columns["gflops"], b.columns["gflops"]
    assert (ga > 0).all() and ga.sum() == pytest.approx(gb.sum(), rel=1e-9)
    order = np.argsort(a.columns["tokens"], kind="stable")
    assert (np.diff(ga[order]) >= 0).all() and ga.max() > ga.min()


def test_the_jobs_layer_counts_no_flops_unless_given_a_meter(videos: Path, clip_model: Path, tmp_path: Path) -> None:
    from vidslim.bench.flops import count_flops
    from vidslim.jobs import embed_videos as jobs_embed_videos

    jobs_embed_videos(videos, clip_model, tmp_path / "a", workers=0)
    assert np.isnan(vs.VideoIndex(tmp_path / "a").columns["gflops"]).all()
    vs.embed_videos(videos, clip_model, tmp_path / "b", workers=0, flops=None)
    assert np.isnan(vs.VideoIndex(tmp_path / "b").columns["gflops"]).all()
    vs.embed_videos(videos, clip_model, tmp_path / "c", workers=0, fixed_batch=True, batch_size=1)
    model = vs.load_model(clip_model)
    one = count_flops(model.encode_video, model.input_spec.random()).total / 1e9  # a dense window, counted alone
    assert vs.VideoIndex(tmp_path / "c").columns["gflops"] == pytest.approx(one, rel=1e-9)


_KILLED_JOB = """
import sys, vidslim as vs
vs.embed_videos(sys.argv[1], sys.argv[2], sys.argv[3], method="rlt", window=0.5, workers=0, part_videos=1)
"""


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_rows_of_an_uninterrupted_run(videos: Path, clip_model: Path,
                                                                    tmp_path: Path) -> None:
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    job = subprocess.Popen([sys.executable, "-c", _KILLED_JOB, str(videos), str(clip_model), str(killed)], env=env)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(killed.glob("part-*.parquet"))) < 2 and job.poll() is None:
        time.sleep(0.01)
    job.send_signal(signal.SIGKILL)
    job.wait()
    parts = len(list(killed.glob("part-*.parquet")))
    assert 2 <= parts < 7, "the job was not killed half-way"
    (killed / f".{part_name(['x'])}.tmp-1").write_bytes(b"half a part")  # what a kill mid-write leaves
    resumed = vs.embed_videos(videos, clip_model, killed, method="rlt", window=0.5, workers=0, part_videos=1)
    assert resumed.already_done == parts and not list(killed.glob(".part-*"))
    vs.embed_videos(videos, clip_model, whole, method="rlt", window=0.5, workers=0, part_videos=3)
    a, b = vs.VideoIndex(killed), vs.VideoIndex(whole)
    assert len(a) == len(b) == 6 * 4
    for name in ("path", "window", "start_s", "end_s", "tokens"):
        assert np.array_equal(a.columns[name], b.columns[name]), name
    assert np.abs(a.vectors - b.vectors).max() < 1e-5


def test_faiss_finds_what_exact_search_finds(tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    from vidslim.jobs.search import build_ivf, exact_topk

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((4000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = build_ivf(vectors, nprobe=10_000)  # every cell visited: the IVF search is exact
    for q in range(5):
        query = vectors[q * 7] + 0.1 * rng.standard_normal(16).astype(np.float32)
        query /= np.linalg.norm(query)
        scores, rows = index.search(query[None], 5)
        exact_scores, exact_rows = exact_topk(vectors, query, 5)
        assert list(rows[0]) == list(exact_rows) and np.allclose(scores[0], exact_scores, atol=1e-5)


def test_search_uses_faiss_when_built_and_exact_on_request(videos: Path, clip_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    summary = vs.embed_videos(videos, clip_model, tmp_path / "index", window=0.5, workers=0, faiss="always")
    assert summary.faiss and (tmp_path / "index" / "faiss.index").is_file()
    index = vs.VideoIndex(tmp_path / "index")
    assert index.faiss_index() is not None
    assert index.search(index.vectors[5], k=1)[0].row == index.search(index.vectors[5], k=1, exact=True)[0].row == 5


def test_commands_embed_search_and_report_errors(videos: Path, clip_model: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "index"
    assert cli_main.main(["embed", str(videos), "--model", str(clip_model), "--out", str(out), "--workers", "0",
                          "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["embedded"] == 6 and summary["num_failed"] == 1
    rows = vs.VideoIndex(out).columns
    assert (rows["gflops"] > 0).all()  # counted by vidslim's FLOP counter; one dense window costs the same
    assert np.allclose(rows["gflops"], rows["gflops"][0])
    assert cli_main.main(["search", str(out), "--video", str(videos / "video_0003.mp4"), "-k", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["hits"][0]["path"] == str(videos / "video_0003.mp4") and len(result["hits"]) == 2
    assert cli_main.main(["search", str(out), "--video", str(videos / "video_0003.mp4")]) == 0
    assert "video_0003.mp4" in capsys.readouterr().out.splitlines()[2]
    # the random clip-tiny has no tokenizer: a text query is a one-line error
    assert cli_main.main(["search", str(out), "a red 3 moves left"]) == 2
    assert "tokenizer" in capsys.readouterr().err
    assert cli_main.main(["search", str(out)]) == 2
    assert "give a TEXT" in capsys.readouterr().err
