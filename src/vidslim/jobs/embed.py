"""`embed_videos`: every window of every video of a collection, embedded and written to an index folder.

    import vidslim as vs
    summary = vs.embed_videos("videos/", "runs/retrieval/model", "index/", method="rlt", window=4.0)
    hits = vs.VideoIndex("index/").search("a dog catches a frisbee", k=10)

Videos are decoded in worker processes (`reader.py`) while the model embeds the ones before (`encode.py`), in
batches bounded by a token budget (`budget.py`); finished videos are written in Parquet parts (`store.py`).
A second run on the same folder resumes: it skips the videos its parts already hold (unreadable ones included)
and refuses other settings. Unreadable videos are skipped, named and counted; a run that could read none of the
collection's videos raises `NothingReadError` (`failures.py`) once its parts are written.
See `store.py` for the folder layout and `windows.py` for how videos are cut.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidslim.errors import ConfigError
from vidslim.jobs.budget import TokenBudget
from vidslim.jobs.encode import StreamStats, WindowEncoder, embed_stream
from vidslim.jobs.failures import require_some_read
from vidslim.jobs.meter import FlopMeter
from vidslim.jobs.model_source import card_of, resolve_model
from vidslim.jobs.reader import WindowReader, decoded
from vidslim.jobs.sources import list_videos
from vidslim.jobs.store import Rows, clean_temporary, done_videos, write_meta, write_part
from vidslim.jobs.windows import WindowPlan


@dataclass
class EmbedSummary:
    """What a run did (`--json` prints it): videos found, already done, embedded now, unreadable (path -> reason),
    rows written, seconds, videos/s, where time went and which side was the bottleneck."""

    out: str
    videos: int
    already_done: int
    embedded: int
    windows: int
    failed: dict[str, str] = field(default_factory=dict)
    parts_written: int = 0
    seconds: float = 0.0
    videos_per_s: float = 0.0
    workers: int = 0
    batching: str = ""
    timing: dict[str, Any] = field(default_factory=dict)
    faiss: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["num_failed"] = len(self.failed)
        return out


def index_meta(model: Any, name: str, plan: WindowPlan, dim: int) -> dict[str, Any]:
    """What index.json records: enough to embed queries the same way and to refuse a mismatched resume."""
    return {"model": name, "card": card_of(model), "dim": dim, "spec": model.input_spec.to_dict(),
            "windows": plan.to_dict(), "format": 1}


def embedding_dim(model: Any) -> int:
    """The width of the model's video embedding (one tiny forward would cost a decode; read the config)."""
    config = model.config
    for key in ("embed_dim",):
        if hasattr(config, key):
            return int(getattr(config, key))
    raise AttributeError(f"cannot tell the embedding width of {type(model).__name__}")


def make_batcher(spec: Any, batch_size: int, token_budget: int | None, fixed_batch: bool) -> TokenBudget[Any]:
    """Fixed batches of `batch_size` windows, or a token budget (default: `batch_size` dense windows' tokens)."""
    if fixed_batch:
        return TokenBudget(None, batch_size)
    t, h, w = spec.grid()
    return TokenBudget(token_budget if token_budget is not None else batch_size * t * h * w)


def embed_videos(
    source: str | os.PathLike[str] | Iterable[str],
    model: Any,
    out: str | os.PathLike[str],
    *,
    method: str | None = None,
    settings: Mapping[str, Any] | None = None,
    window: float | None = None,
    stride: float | None = None,
    batch_size: int = 8,
    token_budget: int | None = None,
    fixed_batch: bool = False,
    workers: int = 2,
    part_videos: int = 64,
    device: str = "cpu",
    flops: FlopMeter | None = None,
    faiss: str = "auto",
    progress: bool = False,
) -> EmbedSummary:
    """Embed the windows of the videos SOURCE names into the index folder `out` (see the module docstring).

    model: checkpoint path, hub id in the local cache, registered config name (random weights) or a model object.
    method/settings: a reduction method replacing the checkpoint's reducers (None keeps them; "dense": none).
    window/stride: window length and step in seconds (None: one window per video; see `windows.py`).
    batch_size/token_budget/fixed_batch: batching (see `make_batcher`). workers: decoding processes (0: inline).
    part_videos: videos per Parquet part (what a kill can lose). flops: a FLOP meter (`jobs/meter.py`; None
    leaves the gflops column empty; the public `vs.embed_videos` passes vidslim's counter unless told otherwise).
    faiss: "auto" builds a FAISS index once the index holds `search.FAISS_MIN_ROWS` rows and faiss is installed,
    "always", or "never".
    """
    started = time.perf_counter()
    for name, value, least in (("batch_size", batch_size, 1), ("token_budget", token_budget, 1),
                               ("workers", workers, 0), ("part_videos", part_videos, 1)):
        if value is not None and value < least:  # before anything is read or written
            raise ConfigError(f"{name} must be >= {least}, got {value}")
    paths = list_videos(source)  # a wrong SOURCE fails before the model is loaded or the folder is made
    model, name = resolve_model(model, method, settings)
    plan = WindowPlan(window, stride)
    folder = Path(out)
    meta = index_meta(model, name, plan, embedding_dim(model))
    write_meta(folder, meta)
    clean_temporary(folder)
    done, failed_before = done_videos(folder)
    todo = [p for p in paths if p not in done]
    reader = WindowReader.for_model(todo, model, plan)
    encoder = WindowEncoder(model, device, flops)
    batcher = make_batcher(model.input_spec, batch_size, token_budget, fixed_batch)
    stats = StreamStats()
    summary = EmbedSummary(str(folder), len(paths), len(paths) - len(todo), 0, 0, workers=workers,
                           batching="fixed" if fixed_batch else f"tokens<={batcher.budget}")
    summary.failed.update({p: r for p, r in failed_before.items() if p in set(paths)})
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="video", desc="embed", dynamic_ncols=True)
    group, rows, group_failed = [], Rows(), {}
    for item, item_rows in embed_stream(decoded(reader, workers, ahead=2 * batch_size), encoder, batcher, stats):
        group.append(item.path)
        if item_rows is None:
            group_failed[item.path] = item.error or "unreadable"
        else:
            rows.extend(item_rows)
            summary.embedded += 1
            summary.windows += len(item_rows)
        if bar is not None:
            bar.update(1)
            if group_failed or summary.failed:
                bar.set_postfix(failed=len(summary.failed) + len(group_failed))
        if len(group) >= part_videos:
            write_part(folder, rows, group, group_failed, meta)
            summary.parts_written += 1
            summary.failed.update(group_failed)
            group, rows, group_failed = [], Rows(), {}
    if group:
        write_part(folder, rows, group, group_failed, meta)
        summary.parts_written += 1
        summary.failed.update(group_failed)
    if bar is not None:
        bar.close()
    summary.seconds = time.perf_counter() - started
    summary.videos_per_s = summary.embedded / max(summary.seconds, 1e-9)
    summary.timing = stats.to_dict(workers)
    require_some_read(len(paths), summary.failed)  # the parts record the failures, so a rerun does not retry them
    from vidslim.jobs.search import maybe_build_faiss

    summary.faiss = maybe_build_faiss(folder, faiss)
    return summary
