"""The collection jobs on X-CLIP, whose `encode_video` returns a video state (embedding + prompt context): an index
row is its video embedding alone (`encode_video_embedding`, transformers' get_video_features), text search ranks by
the cosine with the unprompted text embedding, and classify reads a head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import vidslim as vs
import vidslim.cli.main as cli_main
from vidslim.jobs.reader import WindowReader
from vidslim.jobs.windows import WindowPlan
from vidslim.train.recipe.model import word_tokenizer

pytest.importorskip("pyarrow")

CAPTIONS = ["a red 3 moves left", "a blue 7 moves up, then right"]


@pytest.fixture(scope="module")
def xclip_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random xclip-tiny (4 frames of 32 px) with a word-level tokenizer, saved as a vidslim checkpoint folder."""
    folder = tmp_path_factory.mktemp("xclip")
    torch.manual_seed(0)
    model = vs.create_model("xclip-tiny")
    model.tokenizer = word_tokenizer(CAPTIONS, folder / "tokenizer.json")
    vs.save_model(model, folder / "model")
    return folder / "model"


def test_rows_are_the_video_embeddings_and_text_search_ranks_by_their_cosine(videos: Path, xclip_model: Path,
                                                                             tmp_path: Path) -> None:
    summary = vs.embed_videos(videos, xclip_model, tmp_path / "index", window=1.0, workers=0)
    assert summary.embedded == 6 and summary.windows == 12
    index = vs.VideoIndex(tmp_path / "index")
    assert index.vectors.shape == (12, 32)
    model = vs.load_model(xclip_model)
    path = str(index.columns["path"][0])
    item = WindowReader.for_model([path], model, WindowPlan(1.0))[0]
    with torch.inference_mode():
        state = model.encode_video(item.video)  # [W, 1 + P, E]
        want = F.normalize(model.video_embedding(state), dim=-1).numpy()
        text = F.normalize(model.encode_text([CAPTIONS[0]]), dim=-1).numpy()[0]
    rows = index.columns["path"] == path
    assert np.abs(index.vectors[rows] - want).max() < 1e-5
    hits = index.search(CAPTIONS[0], k=12)
    scores = index.vectors @ text
    assert hits[0].row == int(np.argmax(scores))
    assert np.allclose([h.score for h in hits], scores[[h.row for h in hits]], atol=1e-5)
    by_video = index.search(Path(path), k=1)
    assert by_video[0].path == path


def test_embed_with_reducers_and_search_commands(videos: Path, xclip_model: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """rlt+tome hands the reader's keep masks to the embedding hook; the commands print hits."""
    out = tmp_path / "index"
    assert cli_main.main(["embed", str(videos), "--model", str(xclip_model), "--out", str(out), "--workers", "0",
                          "--method", "rlt+tome", "--set", "tome.r=2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["embedded"] == 6
    rows = vs.VideoIndex(out).columns
    assert (rows["tokens"] < 4 * 16).any()  # RLT dropped repeated patches
    assert cli_main.main(["search", str(out), CAPTIONS[1], "-k", "2", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert len(hits) == 2 and hits[0]["score"] >= hits[1]["score"]


def test_classify_reads_an_xclip_head(videos: Path, tmp_path: Path) -> None:
    model = vs.create_model("xclip-tiny", num_classes=3, class_names=("left", "up", "right"))
    vs.save_model(model, tmp_path / "model")
    results = vs.classify_videos(videos, tmp_path / "model", k=2, method="rlt")
    done = [r for r in results if r.error is None]
    assert len(done) == 6 and all(len(r.pooled) == 2 and r.pooled[0][0] in ("left", "up", "right") for r in done)
