"""The FLOP meter a job takes: run a function, return its result and the FLOPs it spent.

jobs sits above bench in the layer order, so it cannot import vidslim's counter; it names the shape of one
instead. `vidslim.bench.flops.flops_of` is that counter, and the public `vs.embed_videos` and `vidslim embed`
pass it by default (see `vidslim/_jobs_api.py`), so the gflops column is filled unless a caller opts out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

T = TypeVar("T")


class FlopMeter(Protocol):
    """`meter(fn)` runs `fn()` once and returns (its result, the FLOPs it spent, fvcore convention)."""

    def __call__(self, fn: Callable[[], T], /) -> tuple[T, int]: ...
