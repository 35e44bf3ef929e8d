"""Decoding a video's windows, in worker processes, into exactly what the model's forward takes.

`WindowReader(spec, plan, selector)[i]` reads video i: every window's frames (the spec's frame count and size,
uniformly spaced; all windows of a video decoded in one pass, `read_windows`), prepared by the spec (normalised,
laid out) and, when the model has a before-the-model reducer (RLT, random masking), that reducer's keep mask, so
the mask's cost is paid in the workers too and the main process knows each window's token count before it
batches. A video that cannot be read becomes an item with `error` set (the job skips it, names it and counts it);
nothing a worker raises stops the job.

`decoded=True` hands over the decoded uint8 frames [W, T, H, W, C] instead of the prepared float windows, for a
model that prepares its own input (vidslim's models do, `prepare_input`): a quarter of the bytes to pass between
processes (and to a GPU), and the model normalises them once where it runs. The keep mask is still computed
from the prepared windows in the worker, so it is the mask the model would compute itself.

`decoded(...)` runs the reader in a `torch.utils.data.DataLoader` with worker processes, so decoding the next
videos overlaps with the model working on the current ones; items come back in order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from vidslim.errors import VidslimError
from vidslim.io.input_spec import InputSpec
from vidslim.jobs.windows import WindowPlan


@dataclass
class VideoItem:
    """One decoded video: prepared windows [W, ...] (the spec's layout; uint8 frames [W, T, H, W, C] when read with
    `decoded=True`), their spans, their token counts, the keep masks of the model's selector (None without one),
    or the error that made it unreadable."""

    index: int
    path: str
    video: Tensor | None = None
    spans: list[tuple[float, float]] | None = None
    tokens: list[int] | None = None
    keep: Tensor | None = None
    error: str | None = None
    decode_s: float = 0.0


def _duration(path: str) -> float:
    """Seconds the video lasts (the container's duration, else frames / fps): the header's when it says, as
    `probe` would report it, without probe's checks (the read that follows decodes the file)."""
    from vidslim.io.probe import header_duration, probe

    seconds = header_duration(path)
    if seconds:
        return float(seconds)
    info = probe(path)
    if info.duration_s:
        return float(info.duration_s)
    return info.num_frames / (info.fps or 25.0)


class WindowReader(torch.utils.data.Dataset[VideoItem]):
    """Map-style dataset over `paths`: item i is video i's windows (see the module docstring)."""

    def __init__(self, paths: Sequence[str], spec: InputSpec, plan: WindowPlan, selector: Any = None,
                 decoded: bool = False) -> None:
        self.paths = list(paths)
        self.spec = spec
        self.plan = plan
        self.selector = selector
        self.decoded = decoded

    @classmethod
    def for_model(cls, paths: Sequence[str], model: Any, plan: WindowPlan) -> WindowReader:
        """The reader of `model`'s windows: its input spec, its before-the-model reducer, and uint8 frames when the
        model prepares its own input (`prepare_input`), so every job hands its model the same thing."""
        decoded = callable(getattr(model, "prepare_input", None))
        return cls(paths, model.input_spec, plan, model.selector, decoded=decoded)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> VideoItem:
        path = self.paths[index]
        started = time.perf_counter()
        try:
            item = self.read(index, path)
        except (VidslimError, OSError, RuntimeError, ValueError) as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            item = VideoItem(index, path, error=f"{type(error).__name__}: {message}")
        item.decode_s = time.perf_counter() - started
        return item

    def read(self, index: int, path: str) -> VideoItem:
        """Decode, prepare and select the windows of one video (errors propagate)."""
        spec = self.spec
        if self.plan.length is None:  # the whole video: the same read as the evaluation datasets
            frames = spec.read(path).frames.unsqueeze(0)
            spans = [(0.0, round(_duration(path), 6))]
        else:  # one decoding pass for all windows: the same frames as reading them one by one
            spans = self.plan.cut(_duration(path))
            frames = torch.stack([clip.frames for clip in spec.read_windows(path, spans)])
        video = None if self.decoded and self.selector is None else spec.prepare(frames)  # [W, T, C, H, W] / CTHW
        keep = None
        if video is not None and self.selector is not None:
            with torch.no_grad():
                keep = self.selector.select(video, spec).keep
            tokens = keep.flatten(1).sum(1).tolist()
        else:
            grid = spec.grid(frames.shape[1])
            tokens = [grid[0] * grid[1] * grid[2]] * len(spans)
        return VideoItem(index, path, frames if self.decoded else video, spans, [int(t) for t in tokens], keep)


def _collate_one(items: list[VideoItem]) -> VideoItem:
    return items[0]


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # the workers decode; the model's threads stay in the main process


def decoded(reader: WindowReader, workers: int, ahead: int = 8) -> Iterator[VideoItem]:
    """The reader's items in order, decoded by `workers` processes (0: in this process) up to `ahead` videos ahead
    of the consumer. The job asks for about two batches' worth: while the model runs one batch the workers keep
    decoding, so the next batch is ready when the model is (a batch of RLT windows holds several times more
    windows than a batch of dense ones; with too few decoded ahead the model would wait for the rest)."""
    if workers <= 0:
        yield from (reader[i] for i in range(len(reader)))
        return
    loader = torch.utils.data.DataLoader(
        reader, batch_size=1, shuffle=False, num_workers=workers, collate_fn=_collate_one,
        worker_init_fn=_worker_init, prefetch_factor=max(2, math.ceil(ahead / workers)), persistent_workers=False,
    )
    yield from loader
