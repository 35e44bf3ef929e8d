"""From decoded videos to window embeddings: token-budget batches through the model, rows per finished video.

`WindowEncoder` runs one batch of prepared windows (with their selector masks) through `model.encode_video` and
returns L2-normalised embeddings (through `model.encode_video_embedding` where a model defines it: X-CLIP, whose
`encode_video` returns a video state that also holds its prompt context, stores its video embedding alone), plus
each window's share of the batch's FLOPs when a FLOP meter is given (the batch's count split in proportion to the
windows' tokens: exact for dense models, where all windows are alike).
`embed_stream` feeds windows to a `TokenBudget`, runs every full batch, and yields each video, in order, once
all its windows are embedded. The local job (`embed.py`) and the Ray actors (`vidslim.scale`) both use it, so
both write the same numbers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidslim.jobs.budget import TokenBudget
from vidslim.jobs.meter import FlopMeter
from vidslim.jobs.reader import VideoItem
from vidslim.jobs.store import Rows


@dataclass
class StreamStats:
    """Where the time went: waiting for decoded videos, in the model, and the workers' own decode seconds; and
    each batch's tokens and model seconds (what a token budget bounds)."""

    decode_wait_s: float = 0.0
    model_s: float = 0.0
    decode_s: float = 0.0
    windows: int = 0
    batches: int = 0
    tokens: int = 0
    batch_tokens: list[int] = field(default_factory=list)
    batch_s: list[float] = field(default_factory=list)

    def bottleneck(self, workers: int) -> str:
        """"decode" when the workers together need longer to decode than the model to embed, else "model"."""
        return "decode" if self.decode_s / max(workers, 1) > self.model_s else "model"

    def to_dict(self, workers: int) -> dict[str, Any]:
        return {"decode_s": self.decode_s, "decode_wait_s": self.decode_wait_s, "model_s": self.model_s,
                "windows": self.windows, "batches": self.batches, "tokens": self.tokens,
                "batch_tokens_max": max(self.batch_tokens, default=0),
                "batch_s_median": float(np.median(self.batch_s)) if self.batch_s else 0.0,
                "batch_s_max": max(self.batch_s, default=0.0), "bottleneck": self.bottleneck(workers)}


class WindowEncoder:
    """A model's window embeddings (see the module docstring); the model is put in eval mode on `device`."""

    def __init__(self, model: Any, device: str | torch.device = "cpu", flops: FlopMeter | None = None) -> None:
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.flops = flops

    def __call__(self, video: Tensor, keep: Tensor | None, tokens: list[int]) -> tuple[np.ndarray, list[float | None]]:
        """[B, ...] prepared windows, their keep masks (or None) and token counts -> (embeddings [B, D], GFLOPs)."""
        video = video.to(self.device, non_blocking=True)
        mask = None if keep is None else keep.to(self.device, non_blocking=True)

        def run() -> Tensor:
            with torch.inference_mode():
                encode = getattr(self.model, "encode_video_embedding", None) or self.model.encode_video
                out = encode(video) if mask is None else encode(video, token_mask=mask)
                return F.normalize(out.float(), dim=-1)

        if self.flops is None:
            emb, shares = run(), [None] * len(tokens)
        else:
            emb, count = self.flops(run)
            total = max(sum(tokens), 1)
            shares = [count * t / total / 1e9 for t in tokens]
        return emb.cpu().numpy(), shares


def embed_stream(items: Iterable[VideoItem], encoder: WindowEncoder, batcher: TokenBudget[Any],
                 stats: StreamStats | None = None) -> Iterator[tuple[VideoItem, Rows | None]]:
    """(video, its rows) for every item of `items`, in order; rows None for an unreadable video (item.error)."""
    stats = stats or StreamStats()
    pending: dict[int, tuple[VideoItem, list[Any], list[Any]]] = {}

    def run(batch: list[tuple[int, int, Tensor, Tensor | None, int]]) -> None:
        if not batch:
            return
        video = torch.stack([b[2] for b in batch])
        keep = None if batch[0][3] is None else torch.stack([b[3] for b in batch])
        tokens = [b[4] for b in batch]
        started = time.perf_counter()
        emb, gflops = encoder(video, keep, tokens)
        seconds = time.perf_counter() - started
        stats.model_s += seconds
        stats.batches += 1
        stats.windows += len(batch)
        stats.tokens += sum(tokens)
        stats.batch_tokens.append(sum(tokens))
        stats.batch_s.append(seconds)
        for (index, window, *_), e, g in zip(batch, emb, gflops, strict=True):
            pending[index][1][window] = e
            pending[index][2][window] = g

    def finished() -> Iterator[tuple[VideoItem, Rows | None]]:
        while pending:
            index = next(iter(pending))
            item, embs, gflops = pending[index]
            if any(e is None for e in embs):
                return
            del pending[index]
            yield item, _rows(item, embs, gflops)

    iterator = iter(items)
    while True:
        started = time.perf_counter()
        item = next(iterator, None)
        stats.decode_wait_s += time.perf_counter() - started
        if item is None:
            break
        stats.decode_s += item.decode_s
        if item.error is not None or item.video is None:
            if not pending:
                yield item, None
            else:  # keep the order: it finishes after the videos before it
                pending[item.index] = (item, [], [])
            continue
        count = len(item.spans or [])
        pending[item.index] = (item, [None] * count, [None] * count)
        for j in range(count):
            keep = None if item.keep is None else item.keep[j]
            for batch in batcher.add((item.index, j, item.video[j], keep, item.tokens[j]), item.tokens[j]):  # type: ignore[index]
                run(batch)
        yield from finished()
    run(batcher.flush())
    yield from finished()


def _rows(item: VideoItem, embs: list[Any], gflops: list[Any]) -> Rows | None:
    """The rows of one finished video (None when it was unreadable)."""
    if item.error is not None or item.spans is None:
        return None
    rows = Rows()
    for j, ((start, end), e, g) in enumerate(zip(item.spans, embs, gflops, strict=True)):
        rows.path.append(item.path)
        rows.window.append(j)
        rows.start_s.append(float(start))
        rows.end_s.append(float(end))
        rows.tokens.append(int(item.tokens[j]))  # type: ignore[index]
        rows.gflops.append(g)
        rows.embedding.append(np.asarray(e, np.float32))
    item.video = item.keep = None  # the frames are no longer needed
    return rows
