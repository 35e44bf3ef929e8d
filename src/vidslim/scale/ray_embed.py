"""A callable class for `ray.data.Dataset.map_batches`, and the pipeline `vidslim embed --ray` runs.

`EmbedVideos` is built once per Ray actor (the model is loaded once, on the actor's CPU or GPU, without the
random init its checkpoint overwrites, as every load; torch gets as many threads as the actor reserved CPUs)
and called with batches of rows {"path": [...]}: it decodes each video's windows in the actor (only paths go
through the object store, never frames), embeds them through the same `embed_stream` as the local job, writes
the batch's rows as one Parquet part into the shared index folder, and returns one small row per video (path,
windows, error, timing) for the driver's summary.

How `embed_on_ray` behaves on a cluster:
- partitioning: the driver lists the videos (sorted), drops those the folder's parts already hold, and hands
  Ray Data one row per video; Ray cuts them into batches of `videos_per_batch` and spreads batches over
  `actors` actors on any machine that has the requested CPUs / GPUs.
- retries: an unreadable video is not an error (it is named in its part and counted). A crashed actor or a lost
  machine makes Ray restart the actor and rerun its batch (`max_restarts`, `max_task_retries`); the part's name is
  a hash of its videos, so a rerun batch replaces its part instead of duplicating rows. Killing the whole job
  and running it again resumes like the local command.
- where results land: `out` must be a folder every actor can write (a shared filesystem); parts are written
  there by the actors themselves, under temporary names renamed when whole. The driver writes index.json first
  and builds the FAISS index at the end when the index is large.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vidslim.errors import ConfigError
from vidslim.jobs.embed import EmbedSummary, embedding_dim, index_meta, make_batcher
from vidslim.jobs.encode import StreamStats, WindowEncoder, embed_stream
from vidslim.jobs.model_source import resolve_model
from vidslim.jobs.reader import WindowReader
from vidslim.jobs.sources import list_videos
from vidslim.jobs.store import Rows, clean_temporary, done_videos, write_meta, write_part
from vidslim.jobs.windows import WindowPlan


def _actor_threads() -> int | None:
    """Torch threads for this actor: the CPUs Ray reserved for it (at least 1), whatever OMP_NUM_THREADS the
    driver's environment passed down, so actors neither oversubscribe the machine nor leave reserved CPUs idle;
    None outside Ray."""
    try:
        import ray
    except ImportError:
        return None
    if not ray.is_initialized():
        return None
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    return None if cpus is None else max(1, math.ceil(cpus - 1e-9))


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError("embedding on Ray needs ray[data]: pip install 'vidslim[scale]'") from None
    return ray


class EmbedVideos:
    """Ray Data callable class: a batch {"path": [...]} -> one Parquet part in `out` and {"path", "windows",
    "error"} rows (see the module docstring). Arguments are those of `vs.embed_videos`."""

    def __init__(self, model: Any, out: str, method: str | None = None, settings: Mapping[str, Any] | None = None,
                 window: float | None = None, stride: float | None = None, batch_size: int = 8,
                 token_budget: int | None = None, fixed_batch: bool = False, device: str = "cpu") -> None:
        import torch

        started = time.perf_counter()
        threads = _actor_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        if device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device cuda asked for on an actor without a GPU; give the actors num_gpus=1")
        self.model, self.name = resolve_model(model, method, settings)
        self.plan = WindowPlan(window, stride)
        self.folder = Path(out)
        self.meta = index_meta(self.model, self.name, self.plan, embedding_dim(self.model))
        self.encoder = WindowEncoder(self.model, device)
        self.batching = (batch_size, token_budget, fixed_batch)
        self.init_s = time.perf_counter() - started  # reported once, with the actor's first batch

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        import torch

        paths = [str(p) for p in batch["path"]]
        reader = WindowReader.for_model(paths, self.model, self.plan)
        batcher = make_batcher(self.model.input_spec, *self.batching)
        stats = StreamStats()
        rows, failed, windows, errors = Rows(), {}, [], []
        for item, item_rows in embed_stream((reader[i] for i in range(len(reader))), self.encoder, batcher, stats):
            if item_rows is None:
                failed[item.path] = item.error or "unreadable"
                windows.append(0)
            else:
                rows.extend(item_rows)
                windows.append(len(item_rows))
            errors.append(failed.get(item.path, ""))
        write_part(self.folder, rows, paths, failed, self.meta)
        init_s = np.zeros(len(paths))
        if paths:
            init_s[0], self.init_s = self.init_s, 0.0
        return {"path": np.array(paths, dtype=object), "windows": np.array(windows, dtype=np.int64),
                "error": np.array(errors, dtype=object),
                "model_s": np.full(len(paths), stats.model_s / max(len(paths), 1)),
                "decode_s": np.full(len(paths), stats.decode_s / max(len(paths), 1)),
                "init_s": init_s, "threads": np.full(len(paths), torch.get_num_threads())}


def embed_on_ray(
    source: str | os.PathLike[str] | Iterable[str],
    model: Any,
    out: str | os.PathLike[str],
    *,
    address: str | None = "auto",
    actors: int | None = None,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float = 0.0,
    videos_per_batch: int = 16,
    max_retries: int = 3,
    faiss: str = "auto",
    progress: bool = False,
    **options: Any,
) -> EmbedSummary:
    """Embed SOURCE into `out` on the Ray cluster at `address` ("auto": the running one; None: start a local
    instance); `options` are `vs.embed_videos`'s method, settings, window, stride, batch_size, token_budget,
    fixed_batch. Returns the same summary as the local job: model and decode seconds summed over the actors, and
    where the start went (ray_init_s: connecting or starting Ray; actor_init_s: the slowest actor's model load;
    first_result_s: from the call to the first finished batch)."""
    ray = _ray()
    started = time.perf_counter()
    resolved, name = resolve_model(model, options.get("method"), options.get("settings"))
    plan = WindowPlan(options.get("window"), options.get("stride"))
    folder = Path(out)
    write_meta(folder, index_meta(resolved, name, plan, embedding_dim(resolved)))
    clean_temporary(folder)
    paths = list_videos(source)
    done, failed_before = done_videos(folder)
    todo = [p for p in paths if p not in done]
    summary = EmbedSummary(str(folder), len(paths), len(paths) - len(todo), 0, 0,
                           batching="fixed" if options.get("fixed_batch") else "tokens")
    summary.failed.update({p: r for p, r in failed_before.items() if p in set(paths)})
    if todo:
        ray_started = time.perf_counter()
        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, logging_level="ERROR",
                     include_dashboard=False, **({} if address else {"num_cpus": int(actors or 2)}))
        ray_init_s = time.perf_counter() - ray_started
        actors = actors or max(1, int(ray.available_resources().get("CPU", 1) // cpus_per_actor))
        summary.workers = actors
        device = "cuda" if gpus_per_actor > 0 else "cpu"
        kwargs = {"model": model if isinstance(model, (str, Path)) else resolved, "out": str(folder), "device": device,
                  **{k: v for k, v in options.items() if k in ("method", "settings", "window", "stride", "batch_size",
                                                              "token_budget", "fixed_batch")}}
        dataset = ray.data.from_items([{"path": p} for p in todo],
                                      override_num_blocks=max(1, -(-len(todo) // videos_per_batch)))
        results = dataset.map_batches(
            EmbedVideos, fn_constructor_kwargs=kwargs, batch_size=videos_per_batch,
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=cpus_per_actor, num_gpus=gpus_per_actor, batch_format="numpy",
            max_restarts=max_retries, max_task_retries=max_retries,
        )
        model_s = decode_s = actor_init_s = 0.0
        threads: set[int] = set()
        first_result_s = None
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), unit="video", desc="embed (ray)", dynamic_ncols=True)
        for row in results.iter_rows():
            if first_result_s is None:
                first_result_s = time.perf_counter() - started
            if row["error"]:
                summary.failed[str(row["path"])] = str(row["error"])
            else:
                summary.embedded += 1
                summary.windows += int(row["windows"])
            model_s += float(row["model_s"])
            decode_s += float(row["decode_s"])
            actor_init_s = max(actor_init_s, float(row["init_s"]))
            threads.add(int(row["threads"]))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        summary.parts_written = -(-len(todo) // videos_per_batch)
        summary.timing = {"model_s": model_s, "decode_s": decode_s,
                          "bottleneck": "decode" if decode_s > model_s else "model",
                          "ray_init_s": ray_init_s, "actor_init_s": actor_init_s, "first_result_s": first_result_s,
                          "threads_per_actor": sorted(threads)}
    summary.seconds = time.perf_counter() - started
    summary.videos_per_s = summary.embedded / max(summary.seconds, 1e-9)
    from vidslim.jobs.search import maybe_build_faiss

    summary.faiss = maybe_build_faiss(folder, faiss)
    return summary
