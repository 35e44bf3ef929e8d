"""`vidslim train` refusing bad settings before anything is built, naming the setting, and owning its run folder
for the whole command (the model export and summary.json included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from train_cli_helpers import run_cli, write_config

import vidslim.cli.train as train_cli
from vidslim.errors import RunLockedError
from vidslim.train.runlock import RunLock


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synth")


@pytest.mark.parametrize(("override", "message"), [
    ("data.size=30", "data.size=30, but the model reads 32 x 32 frames: set data.size=32 (a model size must be a "
                     "multiple of its patch size 16)"),
    ("data.size=48", "data.size=48, but the model reads 32 x 32 frames: set data.size=32, or "
                     "model.config.image_size=48"),
    ("model.config.embed_dim=10000000", "model.config: embed_dim=10000000 makes a model of about"),
    ("model.reduction=[{rlt: {tau: .nan}}]", "tau must be a finite number >= 0"),
    ("model.reduction=[{rlt: {tau: -1}}]", "tau must be a finite number >= 0"),
    ("model.reduction=[{tokenprune: {layers: [99]}}]", "the model has 2 blocks (0-1), so layer(s) [99] do not exist"),
    ("weight_decay=.nan", "weight_decay"),
    ("device=tpu9", "device 'tpu9' is not a device torch knows"),
])
def test_bad_settings_are_one_line_naming_them(tmp_path: Path, synth_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str], override: str, message: str) -> None:
    config = write_config(tmp_path / "run.yaml", tmp_path / "run", synth_dir, "classify")
    status, out, err = run_cli(monkeypatch, capsys, "train", "classify", config, override)
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("kind", ["fifo", "folder", "empty", "list"])
def test_config_files_that_are_not_run_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str], kind: str) -> None:
    import os

    path = tmp_path / "config.yaml"
    if kind == "fifo":
        os.mkfifo(path)  # reading it would wait for a writer forever
    elif kind == "folder":
        path.mkdir()
    else:
        path.write_text("" if kind == "empty" else "[1, 2]\n")
    status, _, err = run_cli(monkeypatch, capsys, "train", "classify", path)
    reason = {"fifo": "is not a regular file (a FIFO", "folder": "is a folder", "empty": "the file is empty",
              "list": "the top level must be a mapping of run settings, got a list"}[kind]
    assert status == 2 and err.startswith(f"vidslim train: error: {path}: {reason}")


@pytest.mark.slow
def test_the_command_owns_the_folder_until_its_last_file_and_resume_names_the_changed_width(
        tmp_path: Path, synth_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "run.yaml", tmp_path / "run", synth_dir, "classify", steps=2)
    real_export, seen = train_cli.export_model, []

    def export_while_checking(model, run_dir):  # type: ignore[no-untyped-def]
        with pytest.raises(RunLockedError):  # a second run cannot take the folder while the model is written
            RunLock(run_dir).acquire()
        seen.append(run_dir)
        return real_export(model, run_dir)

    monkeypatch.setattr(train_cli, "export_model", export_while_checking)
    status, out, _ = run_cli(monkeypatch, capsys, "train", "classify", config, "--json")
    assert status == 0 and seen == [tmp_path / "run"] and json.loads(out)["steps"] == 2
    with RunLock(tmp_path / "run"):  # released when the command ends
        pass

    # resuming with another width: one line naming the setting that changed; the run's config.yaml is kept
    saved = (tmp_path / "run" / "config.yaml").read_text()
    status, _, err = run_cli(monkeypatch, capsys, "train", "classify", config, "steps=4", "model.config.embed_dim=32",
                             "--json")
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "model.config.embed_dim is 32 now, None when the checkpoints were written" in err
    assert (tmp_path / "run" / "config.yaml").read_text() == saved
