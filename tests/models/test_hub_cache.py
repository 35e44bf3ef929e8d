"""Hub ids are found in the local Hugging Face cache, laid out as huggingface_hub lays it out, with no network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vidslim as vs
from hub_files import fake_cache
from vidslim.errors import CheckpointError
from vidslim.models.hub_cache import hub_cache_dir, looks_like_hub_id, snapshot_folder


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    assert hub_cache_dir() == Path.home() / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == tmp_path / "home" / "hub"
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
    assert "huggingface-cli download openai/clip-vit-base-patch16" in message
    assert "\n" not in message


def test_a_local_path_wins_and_paths_are_not_hub_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org").mkdir()
    (tmp_path / "org" / "name").mkdir()
    assert not looks_like_hub_id("org/name")  # it exists on disk
    assert looks_like_hub_id("org/other") and not looks_like_hub_id("./org/other")
    assert not looks_like_hub_id("/abs/path") and not looks_like_hub_id("a/b/c")


def test_hub_lookup_imports_no_network_code() -> None:
    code = ("import sys, vidslim.models.hub_cache as h, vidslim.models.checkpoint_read; "
            "print(sorted(m for m in ('huggingface_hub', 'requests', 'httpx', 'urllib3') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
