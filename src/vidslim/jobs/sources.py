"""Which videos a job runs on: SOURCE is a folder (searched recursively), a text file with one path per line, a
glob pattern, or a list of paths. Paths come back sorted and de-duplicated, so every run and every machine of a
cluster sees the same order (resuming and partitioning rely on it)."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from vidslim.errors import ConfigError

#: file endings read as videos when SOURCE is a folder
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp")
#: file endings read as list files (one path per line; relative lines are relative to the list's folder)
LIST_SUFFIXES = (".txt", ".lst", ".list")


def list_videos(source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[str]:
    """The video paths SOURCE names (see the module docstring); a ConfigError when it names none."""
    if not isinstance(source, (str, os.PathLike)):
        paths = sorted({str(Path(p)) for p in source})
        if not paths:
            raise ConfigError("no videos given: pass a folder, a list file, a glob pattern or paths")
        return paths
    text = str(source)
    path = Path(text)
    if path.is_dir():
        found = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not found:
            raise ConfigError(f"{text}: the folder holds no video files ({', '.join(VIDEO_SUFFIXES[:5])}, ...)")
        return found
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        found = sorted({str(p if (p := Path(line)).is_absolute() else path.parent / p)
                        for line in lines if line and not line.startswith("#")})
        if not found:
            raise ConfigError(f"{text}: the list file names no videos (one path per line)")
        return found
    if path.is_file():
        return [text]
    if glob.has_magic(text):
        found = sorted(p for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not found:
            raise ConfigError(f"{text}: the pattern matches no files")
        return found
    raise ConfigError(f"{text}: no such folder, list file or video; pass a folder, a .txt list or a glob pattern")
