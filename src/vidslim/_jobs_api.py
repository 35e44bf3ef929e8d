"""`vs.embed_videos`: the embed job with vidslim's FLOP counter as its default meter.

The job lives in `vidslim.jobs`, above `vidslim.bench` in the layer order, so it cannot reach the counter; the
top-level API can, and fills the index's gflops column unless the caller passes `flops=None` (or a meter of its
own). `vidslim embed` passes the same counter.
"""

from __future__ import annotations

import functools
from typing import Any

from vidslim.jobs.embed import EmbedSummary
from vidslim.jobs.embed import embed_videos as _embed_videos


@functools.wraps(_embed_videos)
def embed_videos(*args: Any, **kwargs: Any) -> EmbedSummary:
    if "flops" not in kwargs:
        from vidslim.bench.flops import flops_of

        kwargs["flops"] = flops_of
    return _embed_videos(*args, **kwargs)
