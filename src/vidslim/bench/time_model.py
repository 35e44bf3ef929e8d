"""Time against FLOPs, calibrated on measured points: the FLOP ratio that should give a wanted time ratio.

    model = TimeModel()                       # before any measurement: time falls as FLOPs do (fixed share 0)
    model.add(flop_ratio=0.51, time_ratio=0.56)   # one measured setting (its paired time ratio to dense)
    model.fixed                               # share of dense's time that did not fall with FLOPs
    model.flop_ratio_for(0.5)                 # the FLOP ratio predicted to take half of dense's time
    model.predict(0.44)                       # the time ratio predicted for a FLOP ratio

The model is time_ratio = fixed + (1 - fixed) * flop_ratio: a reduction removes FLOPs, and some share of dense's
time (the stem, the reduction's own work, memory traffic, Python per layer) does not fall with them. `fixed` is the
least-squares fit of that line through (1, 1) over every measured point, so several noisy measurements average
instead of the last one deciding. Points at FLOP ratio near 1 say nothing about the slope and are left out.
"""

from __future__ import annotations

import dataclasses
import math

#: the fitted fixed share is kept inside this range (a wild measurement must not send the solver to a corner)
FIXED_RANGE = (-0.5, 0.9)
#: points closer to dense than this (FLOP ratio above 1 - NEAR_DENSE) do not constrain the fit
NEAR_DENSE = 0.02


@dataclasses.dataclass
class TimeModel:
    """time_ratio = fixed + (1 - fixed) * flop_ratio, with `fixed` fitted on measured (flop, time) ratio pairs."""

    points: list[tuple[float, float]] = dataclasses.field(default_factory=list)

    def add(self, flop_ratio: float, time_ratio: float) -> None:
        """Record one measured setting: its FLOP ratio to dense and its measured time ratio (1 / speedup)."""
        if math.isfinite(flop_ratio) and math.isfinite(time_ratio) and time_ratio > 0:
            self.points.append((float(flop_ratio), float(time_ratio)))

    @property
    def fixed(self) -> float:
        """Least-squares fixed share over the points (0 before any informative point)."""
        use = [(x, y) for x, y in self.points if x < 1 - NEAR_DENSE]
        if not use:
            return 0.0
        num = sum((1 - x) * (y - x) for x, y in use)
        den = sum((1 - x) ** 2 for x, _ in use)
        return min(max(num / den, FIXED_RANGE[0]), FIXED_RANGE[1])

    def predict(self, flop_ratio: float) -> float:
        """The time ratio (to dense) predicted at `flop_ratio`."""
        f = self.fixed
        return f + (1 - f) * flop_ratio

    def flop_ratio_for(self, time_ratio: float) -> float:
        """The FLOP ratio predicted to give `time_ratio` (at least 1e-3: no setting removes every FLOP)."""
        f = self.fixed
        return max((time_ratio - f) / (1 - f), 1e-3)


__all__ = ["FIXED_RANGE", "NEAR_DENSE", "TimeModel"]
