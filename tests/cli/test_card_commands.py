"""A reduction card from `vidslim tune` is accepted by `--card FILE` of embed, classify, eval and export, replaces the
model's reducers there, and cannot be mixed with --method or --set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import vidslim as vs
import vidslim.cli.main as cli_main
from vidslim.bench.card_file import card_or_method, write_card
from vidslim.errors import ConfigError

pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two synthetic videos, a clip-tiny and a videomae-tiny classifier saved dense, and cards for each."""
    from vidslim.data.synth import make_synthetic

    root = tmp_path_factory.mktemp("cards")
    make_synthetic(root / "videos", num_videos=2, fps=8, seconds=1, size=32)
    vs.save_model(vs.create_model("clip-tiny", num_frames=4, image_size=32), root / "clip")
    vs.save_model(vs.create_model("videomae-tiny", num_classes=8, num_frames=4, image_size=32, patch_size=16),
                  root / "vit")
    tome = write_card(root / "tome.json", [{"tome": {"r": 2}}], model="clip-tiny", target="keep=0.7")
    prune = write_card(root / "prune.json", [{"tokenprune": {"layers": [0], "keep": 0.5}}], model="videomae-tiny")
    return {"videos": root / "videos", "clip": root / "clip", "vit": root / "vit", "tome": tome, "prune": prune}


def test_embed_records_the_cards_reduction(tiny: dict[str, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "index"
    assert cli_main.main(["embed", str(tiny["videos"]), "--model", str(tiny["clip"]), "--card", str(tiny["tome"]),
                          "--out", str(out), "--workers", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["embedded"] == 2
    index = vs.VideoIndex(out)
    assert [list(part) for part in index.meta["card"]] == [["tome"]] and index.meta["card"][0]["tome"]["r"] == 2
    dense = vs.VideoIndex(_embed_dense(tiny, tmp_path / "dense"))
    assert (index.columns["gflops"] < dense.columns["gflops"]).all()  # ToMe r=2 merged tokens away


def _embed_dense(tiny: dict[str, Path], out: Path) -> Path:
    vs.embed_videos(tiny["videos"], tiny["clip"], out, method="dense", workers=0)
    return out


def test_classify_and_export_take_the_card(tiny: dict[str, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["classify", str(tiny["videos"] / "video_0000.mp4"), "--model", str(tiny["vit"]),
                          "--card", str(tiny["prune"]), "-k", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_failed"] == 0
    out = tmp_path / "vit.pt2"
    assert cli_main.main(["export", str(tiny["vit"]), "--card", str(tiny["prune"]), "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["reduction"] == "TokenPrune" and out.exists()


def test_a_card_with_method_or_set_is_one_line(tiny: dict[str, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="drop --method"):
        card_or_method(tiny["tome"], "rlt")
    with pytest.raises(ConfigError, match="drop --set"):
        card_or_method(tiny["tome"], None, ["r=3"])
    assert card_or_method(None, "rlt") == "rlt"
    assert card_or_method(tiny["tome"], None) == [{"tome": {"r": 2}}]
    status = cli_main.main(["embed", str(tiny["videos"]), "--model", str(tiny["clip"]), "--card", str(tiny["tome"]),
                            "--method", "rlt", "--out", str(tmp_path / "x"), "--workers", "0"])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1 and "drop --method" in err
    status = cli_main.main(["export", str(tiny["vit"]), "--card", str(tmp_path / "missing.json"), "--out",
                            str(tmp_path / "m.pt2")])
    err = capsys.readouterr().err
    assert status == 2 and "no such file" in err and "vidslim tune" in err


def test_eval_takes_the_card_as_its_reduction(tiny: dict[str, Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    from train_cli_helpers import run_cli, write_config

    config = write_config(tmp_path / "run.yaml", tmp_path / "run", tmp_path / "synth", "classify")
    card = write_card(tmp_path / "card.json", [{"tokenprune": {"layers": [0], "keep": 0.5}}])
    status, out, _ = run_cli(monkeypatch, capsys, "eval", "classify", config, "--card", card, "--json")
    assert status == 0
    reduction = json.loads(out)["reduction"]  # the config's RLT is replaced by the card's pruning
    assert [list(part) for part in reduction] == [["token_prune"]]
    assert reduction[0]["token_prune"]["layers"] == [0] and reduction[0]["token_prune"]["keep"] == 0.5
