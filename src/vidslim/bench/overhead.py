"""What the reductions themselves cost: matching, sorting, gathering and mask building, apart from model time.

    split = reduction_overhead(lambda: model(video), model)
    split.reduce_ms, split.total_ms, split.percent, split.by_label   # {"vidslim.reduce.TempMe.after_attention": ms}

One extra call runs under `torch.profiler` (never a timed one: the profiler slows everything down). The blocks
wrap every reducer call in a range named `vidslim.reduce.<Reducer>.<hook>` (`vidslim.tokens.protocol.reduce_range`);
the call itself runs in a `vidslim.bench.call` range. The overhead is the time inside the outermost reduce ranges
(nested ones are not counted twice), the total the time of the call range, both from the same profiled call, so
their ratio is fair even though the profiler inflates both.

Selectors (RLT) run before the blocks: their selection (RLT's comparison of neighbouring tubelets, its run
lengths) runs in a `vidslim.reduce.<Selector>.token_mask` range (`ReducibleModel.embed_input`); the gather of the
kept tubelets inside the embedding is not separated from the patch projection and counts as model time.

Times are CPU times on CPU. On CUDA they are the device (kernel) time under each range, and the total the device
time of the call (untested here: no GPU on the development machine).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from vidslim.tokens.protocol import REDUCE_RANGE_PREFIX

CALL_RANGE = "vidslim.bench.call"


@dataclasses.dataclass(frozen=True)
class OverheadSplit:
    """Milliseconds of one profiled call: inside reducer ranges, in all, and per range name."""

    reduce_ms: float
    total_ms: float
    by_label: dict[str, float]

    @property
    def percent(self) -> float:
        """Reduction time as a percentage of the whole call (0 when the call took no measurable time)."""
        return 100.0 * self.reduce_ms / self.total_ms if self.total_ms > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "reduce_ms": self.reduce_ms,
            "total_ms": self.total_ms,
            "percent": self.percent,
            "by_label": dict(self.by_label),
        }


def _event_ms(event: Any, device: bool) -> float:
    micros = getattr(event, "device_time_total", 0.0) if device else event.cpu_time_total
    return float(micros) / 1e3


def _outermost(event: Any) -> bool:
    """True when no ancestor of the event is itself a reduce range (so nested ranges count once)."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith(REDUCE_RANGE_PREFIX):
            return False
        parent = parent.cpu_parent
    return True


def split_events(events: Any, device: bool = False) -> OverheadSplit:
    """Sum the outermost reduce ranges and the call range of a profiler's event list (`prof.events()`)."""
    by_label: dict[str, float] = {}
    total = 0.0
    for event in events:
        if event.name == CALL_RANGE:
            total += _event_ms(event, device)
        elif event.name.startswith(REDUCE_RANGE_PREFIX) and _outermost(event):
            by_label[event.name] = by_label.get(event.name, 0.0) + _event_ms(event, device)
    return OverheadSplit(sum(by_label.values()), total, dict(sorted(by_label.items())))


def reduction_overhead(fn: Callable[[], Any], model: nn.Module | None = None, device: str = "cpu") -> OverheadSplit:
    """Run `fn()` once under torch.profiler and split its time into reduction ranges and the rest.

    `model`: the model `fn` runs (unused: a model labels its selector's time itself, `embed_input`); `device`:
    "cuda" reads device (kernel) times and synchronises around the call.
    """
    on_cuda = torch.device(device).type == "cuda"
    activities = [torch.profiler.ProfilerActivity.CPU]
    if on_cuda:
        activities.append(torch.profiler.ProfilerActivity.CUDA)
        torch.cuda.synchronize()
    prof = torch.profiler.profile(activities=activities)
    with _native_stderr_silenced():
        prof.start()
    try:
        with torch.profiler.record_function(CALL_RANGE):
            fn()
        if on_cuda:
            torch.cuda.synchronize()
    finally:
        with _native_stderr_silenced():
            prof.stop()
    return split_events(prof.events(), device=on_cuda)


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for a moment: the profiler's C++ side (kineto) prints a
    "profiler_start" / "profiler_stop" line to stderr on every start and stop, with no setting to turn it off,
    which would land in the middle of the demo's and the CLI's output."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (some embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
