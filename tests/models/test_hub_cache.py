"""Hub ids are found in the local Hugging Face cache, laid out as huggingface_hub lays it out, with no network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import vidslim as vs
from hub_files import fake_cache
from vidslim.errors import CheckpointError
from vidslim.models.hub_cache import hub_cache_dir, looks_like_hub_id, snapshot_folder


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    assert hub_cache_dir() == Path.home() / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", str(tmp_path / "old"))
    assert hub_cache_dir() == tmp_path / "old"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert hub_cache_dir() == tmp_path / "hub"


def test_load_model_by_hub_id_from_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = vs.create_model("videomae-tiny").eval()
    vs.save_model(model, tmp_path / "saved", format="transformers")
    fake_cache(tmp_path / "home" / "hub", "some-org/tiny-videomae", tmp_path / "saved", commit="b" * 40)
    fake_cache(tmp_path / "home" / "hub", "some-org/tiny-videomae", tmp_path / "saved", commit="c" * 40, main=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert snapshot_folder("some-org/tiny-videomae").name == "b" * 40  # refs/main picks the revision
    assert snapshot_folder("some-org/tiny-videomae@" + "c" * 40).name == "c" * 40
    loaded = vs.load_model("some-org/tiny-videomae")
    video = torch.randn(1, 3, 4, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(video), model(video), atol=1e-4, rtol=1e-4)


def test_missing_hub_id_says_where_it_looked_and_how_to_fetch(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(CheckpointError) as error:
        vs.load_model("openai/clip-vit-base-patch16")
    message = str(error.value)
    assert str(tmp_path / "models--openai--clip-vit-base-patch16") in message
    assert "`hf download openai/clip-vit-base-patch16`" in message
    assert "\n" not in message


def test_a_local_path_wins_and_paths_are_not_hub_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org").mkdir()
    (tmp_path / "org" / "name").mkdir()
    assert not looks_like_hub_id("org/name")  # it exists on disk
    assert looks_like_hub_id("org/other") and not looks_like_hub_id("./org/other")
    assert not looks_like_hub_id("/abs/path") and not looks_like_hub_id("a/b/c")


def test_loading_by_hub_id_imports_no_network_code(tmp_path: Path) -> None:
    """The whole load, not only the lookup: no network client (nor transformers, which would pull one in)."""
    vs.save_model(vs.create_model("videomae-tiny"), tmp_path / "saved", format="transformers")
    fake_cache(tmp_path / "hub", "some-org/tiny", tmp_path / "saved")
    code = ("import sys, vidslim as vs; vs.load_model('some-org/tiny'); print(sorted(m for m in ('huggingface_hub', "
            "'requests', 'httpx', 'urllib3', 'transformers') if m in sys.modules))")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"


def _partial(tmp_path: Path, cut: str) -> str:
    """A cached tiny CLIP whose download was cut short in the way `cut` names; returns its id."""
    folder = tmp_path / "saved"
    vs.save_model(vs.create_model("clip-tiny"), folder, format="transformers")
    if cut == "shard":  # a sharded checkpoint whose second shard never arrived
        state = load_file(folder / "model.safetensors")
        names = sorted(state)
        for i, part in enumerate((names[: len(names) // 2], names[len(names) // 2 :])):
            save_file({k: state[k] for k in part}, folder / f"model-0000{i + 1}-of-00002.safetensors")
        index = {"weight_map": {k: f"model-0000{1 + (k in names[len(names) // 2 :])}-of-00002.safetensors"
                                for k in names}}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))
        (folder / "model.safetensors").unlink()
        (folder / "model-00002-of-00002.safetensors").unlink()
    if cut == "weights":
        (folder / "model.safetensors").unlink()
    snapshot = fake_cache(tmp_path / "hub", "org/cut", folder)
    if cut == "blob":
        (snapshot / "model.safetensors").resolve().unlink()
    return "org/cut"


@pytest.mark.parametrize(("cut", "says"), [
    ("weights", "has config.json but no weights (model.safetensors or pytorch_model.bin); the download was partial"),
    ("blob", "is incomplete (model.safetensors link to blobs that are gone)"),
    ("shard", "lacks model-00002-of-00002.safetensors, which model.safetensors.index.json names"),
])
def test_a_snapshot_cut_short_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cut: str,
                                                 says: str) -> None:
    hub_id = _partial(tmp_path, cut)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(CheckpointError) as error:
        vs.load_model(hub_id)
    message = str(error.value)
    assert message.startswith("org/cut: the cached snapshot ") and says in message, message
    assert message.endswith("`hf download org/cut`") and "\n" not in message
