"""Cutting a video into the windows a model embeds one at a time.

A window is a stretch [start, end) of the video in seconds; the model's input spec says how many frames are
read from it (uniformly spaced, the evaluation protocol of the retrieval and recognition benchmarks).

- `length=None` (the default): one window, the whole video. This is how retrieval benchmarks embed a clip, so
  an index built this way ranks videos exactly as `vidslim eval retrieval` does.
- `length=L`: windows of L seconds starting every `stride` seconds (default `stride=L`: consecutive windows;
  a smaller stride overlaps them). When the windows do not reach the end, one last window of L seconds ending at
  the end of the video is added, so every moment is covered and every window spans the same time. A video
  shorter than L is one window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vidslim.errors import ConfigError


@dataclass(frozen=True)
class WindowPlan:
    """How videos are cut: `length` and `stride` in seconds (see the module docstring)."""

    length: float | None = None
    stride: float | None = None

    def __post_init__(self) -> None:
        for name in ("length", "stride"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigError(f"window {name} must be a positive number of seconds, got {value}")
        if self.length is None and self.stride is not None:
            raise ConfigError("a window stride needs a window length (--window SECONDS)")

    def cut(self, duration: float) -> list[tuple[float, float]]:
        """[(start, end)] seconds of the windows of a video lasting `duration` seconds."""
        if self.length is None or duration <= self.length:
            return [(0.0, float(duration))]
        stride = self.stride or self.length
        spans = []
        start = 0.0
        while start + self.length <= duration + 1e-9:
            spans.append((round(start, 6), round(start + self.length, 6)))
            start += stride
        if spans[-1][1] < duration - 1e-6:
            spans.append((round(duration - self.length, 6), round(float(duration), 6)))
        return spans

    def to_dict(self) -> dict[str, float | None]:
        return {"length": self.length, "stride": self.stride}
