"""The index folder an embedding job writes: Parquet parts, written atomically, and what they describe.

    INDEX_DIR/index.json            model, reduction card, input spec, window plan, embedding width (written first)
    INDEX_DIR/part-<hash>.parquet   rows of a group of whole videos; the group's unreadable videos in its metadata
    INDEX_DIR/faiss.index           an approximate search index over every row, when the index is large (search.py)

A row is one window: path, window (its number in the video), start_s, end_s, tokens (kept by the model's
before-the-model reducer), gflops (the model's FLOPs for the window, when counted), model, card, embedding
(float32, L2-normalised). A part holds every window of its videos, and is written to a temporary name and
renamed: a part either exists whole or not at all, so a killed job loses at most the videos of the parts it was
writing and a restart (which skips the videos the parts already hold) neither duplicates nor loses a row.
A part's name is a hash of its video paths, so a group written twice (a retried task on a cluster) replaces
itself instead of adding rows.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidslim.errors import ConfigError

META = "index.json"
PART_GLOB = "part-*.parquet"
FAILED_KEY = b"vidslim.failed"


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ConfigError("writing and reading an index needs pyarrow: pip install 'vidslim[index]'") from None
    return pyarrow


@dataclass
class Rows:
    """Column lists of the rows of one part (one entry per window)."""

    path: list[str] = field(default_factory=list)
    window: list[int] = field(default_factory=list)
    start_s: list[float] = field(default_factory=list)
    end_s: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    gflops: list[float | None] = field(default_factory=list)
    embedding: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.path)

    def extend(self, other: Rows) -> None:
        for name in ("path", "window", "start_s", "end_s", "tokens", "gflops", "embedding"):
            getattr(self, name).extend(getattr(other, name))


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    """index.json: written on a fresh folder; on an existing one it must describe the same job (resuming)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / META
    meta = json.loads(json.dumps(meta))  # tuples as lists, as they read back
    if path.is_file():
        old = read_meta(folder)
        changed = sorted(k for k in set(old) | set(meta) if old.get(k) != meta.get(k))
        if changed:
            raise ConfigError(f"{path}: this index was made with other settings ({', '.join(changed)} differ); "
                              "resume with the same settings, or write to another --out folder")
        return
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_meta(folder: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(folder) / META
    if not path.is_file():
        raise ConfigError(f"{folder}: not an index folder (no {META}); make one with `vidslim embed SOURCE --out "
                          f"{folder}`")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        meta = error
    if not isinstance(meta, dict) or not isinstance(meta.get("dim"), int):
        why = f" ({' '.join(str(meta).split())[:120]})" if isinstance(meta, Exception) else ""
        raise ConfigError(f"{path}: damaged index description{why}; embed into a new --out folder (or delete "
                          f"{folder} and run `vidslim embed` again)")
    return meta


def part_name(paths: Sequence[str]) -> str:
    """part-<hash of the sorted video paths>.parquet: the same group of videos always gets the same name."""
    digest = hashlib.sha1("\n".join(sorted(paths)).encode()).hexdigest()[:20]
    return f"part-{digest}.parquet"


def write_part(folder: Path, rows: Rows, videos: Sequence[str], failed: dict[str, str], meta: dict[str, Any]
               ) -> Path:
    """Write the rows of `videos` (and their unreadable ones, `failed`: path -> reason) as one part, atomically."""
    pa = _pyarrow()
    dim = int(meta["dim"])
    flat = np.concatenate(rows.embedding).astype(np.float32) if len(rows) else np.zeros(0, np.float32)
    table = pa.table({
        "path": pa.array(rows.path, pa.string()),
        "window": pa.array(rows.window, pa.int32()),
        "start_s": pa.array(rows.start_s, pa.float64()),
        "end_s": pa.array(rows.end_s, pa.float64()),
        "tokens": pa.array(rows.tokens, pa.int32()),
        "gflops": pa.array(rows.gflops, pa.float64()),
        "model": pa.DictionaryArray.from_arrays(pa.array(np.zeros(len(rows), np.int32)),
                                                pa.array([str(meta["model"])])),
        "card": pa.DictionaryArray.from_arrays(pa.array(np.zeros(len(rows), np.int32)),
                                               pa.array([json.dumps(meta["card"])])),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim),
    })
    table = table.replace_schema_metadata({FAILED_KEY: json.dumps(failed).encode(),
                                           b"vidslim.videos": json.dumps(sorted(videos)).encode()})
    path = folder / part_name(videos)
    tmp = folder / f".{path.name}.tmp-{os.getpid()}"
    import pyarrow.parquet as pq

    pq.write_table(table, tmp)
    with open(tmp, "rb") as handle:  # the bytes reach the disk before the name does
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def clean_temporary(folder: Path) -> int:
    """Remove the half-written parts a killed job left behind; return how many."""
    count = 0
    for tmp in folder.glob(".part-*.tmp-*"):
        tmp.unlink(missing_ok=True)
        count += 1
    return count


def done_videos(folder: Path) -> tuple[set[str], dict[str, str]]:
    """(videos the parts hold, unreadable videos -> reason) from the parts' metadata only (no rows read)."""
    _pyarrow()
    import pyarrow.parquet as pq

    done: set[str] = set()
    failed: dict[str, str] = {}
    for part in sorted(folder.glob(PART_GLOB)):
        metadata = _read_part(part, pq.read_schema).metadata or {}
        try:
            done.update(json.loads(metadata.get(b"vidslim.videos", b"[]")))
            failed.update(json.loads(metadata.get(FAILED_KEY, b"{}")))
        except (UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError) as error:
            raise _damaged(part, error) from None
    return done, failed


def _damaged(part: Path, error: BaseException) -> ConfigError:
    reason = " ".join(str(error).split())[:160] or type(error).__name__
    return ConfigError(f"{part}: damaged index part ({reason}); delete it and run the same `vidslim embed` again "
                       "to embed its videos anew")


def _read_part(part: Path, read: Any) -> Any:
    """`read(part)` (a pyarrow.parquet reader); a damaged or unreadable part is one ConfigError naming it."""
    import pyarrow as pa

    try:
        return read(part)
    except (pa.ArrowException, OSError) as error:
        raise _damaged(part, error) from None


def read_rows(folder: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every row of the index, sorted by (path, window): (columns without the embedding, embeddings [N, D])."""
    _pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = sorted(Path(folder).glob(PART_GLOB))
    dim = int(read_meta(folder)["dim"])
    if not parts:
        return {k: np.zeros(0) for k in ("path", "window", "start_s", "end_s", "tokens", "gflops")}, \
            np.zeros((0, dim), np.float32)
    table = pa.concat_tables([_read_part(p, pq.read_table) for p in parts])
    table = table.sort_by([("path", "ascending"), ("window", "ascending")])
    emb = table.column("embedding").combine_chunks()
    vectors = emb.flatten().to_numpy(zero_copy_only=False).reshape(len(table), dim)
    columns = {name: table.column(name).to_numpy(zero_copy_only=False)
               for name in ("path", "window", "start_s", "end_s", "tokens", "gflops")}
    return columns, np.array(vectors, dtype=np.float32, order="C", copy=True)
