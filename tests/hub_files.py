"""A local Hugging Face hub cache laid out as huggingface_hub lays it out (blobs, symlinked snapshots, refs/main),
for the tests that load models by hub id. Tests import `from hub_files import fake_cache` (tests/conftest.py puts
tests/ on sys.path)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

import vidslim as vs


def fake_cache(cache: Path, repo: str, source: Path, commit: str = "a" * 40, main: bool = True) -> Path:
    """Move `source`'s files into blobs/<sha256> and link them from snapshots/<commit>/, as huggingface_hub does."""
    root = cache / ("models--" + repo.replace("/", "--"))
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in source.iterdir():
        data = file.read_bytes()
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
    if main:
        (root / "refs").mkdir(exist_ok=True)
        (root / "refs" / "main").write_text(commit)
    return snapshot


def load_through_cache(hf: Any, repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`hf` saved with save_pretrained, laid into a fake cache as `repo`, and read back by `vs.load_model(repo)` with
    HF_HUB_CACHE pointing at it."""
    hf.save_pretrained(tmp_path / "saved")
    fake_cache(tmp_path / "hub", repo, tmp_path / "saved")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    return vs.load_model(repo)


__all__ = ["fake_cache", "load_through_cache"]
