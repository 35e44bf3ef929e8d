"""Measured speedup (with its spread) against tokens kept, for every method that fits a model, on the user's clips.

    points = pareto_points(tuner, steps=3)      # [(label, kept, speedup, q25, q75, reliable), ...]
    plot_speedup(points, "pareto.png")          # vidslim.viz.plot: bars for the spread, grey rings if unreliable

Each method runs at `steps` settings of its knob spread over its range (RLT tau, ToMe/TempMe r, keep), each timed
against dense with the interleaved paired timer on every clip; kept is the mean over clips of the fraction of
dense's tokens entering attention.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from vidslim.bench.tune import KNOBS, Tuner

#: knob values per method drawn on the Pareto picture (mild to strong reduction)
GRID: dict[str, tuple[float, ...]] = {
    "rlt": (0.05, 0.1, 0.2), "tome": (4, 8, 16), "tempme": (2, 6, 12), "tokenprune": (0.8, 0.6, 0.4),
    "random": (0.75, 0.5, 0.25),
}


def pareto_points(tuner: Tuner, methods: list[str] | None = None,
                  progress: Callable[[str], Any] | None = None) -> list[tuple]:
    """(label, kept, speedup, q25, q75, reliable) per method and setting; methods default to every tunable method
    that fits the model's family."""
    from vidslim.reduce.registry import lookup

    names = methods or [m for m in KNOBS if lookup(m).fits(tuner.source.family)]
    points = []
    for method in names:
        knob = KNOBS[method]
        for value in GRID[method]:
            settings = {knob.name: int(value) if knob.integer else value}
            if progress is not None:
                progress(f"{method} {knob.name}={value:g}")
            kept = float(np.mean(tuner.kept(tuner.counts(method, settings))))
            paired, _ = tuner.time(method, settings)
            points.append((f"{method} {knob.name}={value:g}", kept, paired.speedup, paired.low, paired.high,
                           paired.reliable))
    return points


__all__ = ["GRID", "pareto_points"]
