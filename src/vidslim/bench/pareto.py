"""Measured speedup (with its spread) against tokens kept, for every method that fits a model, on the user's clips.

    points = pareto_points(tuner)     # [(setting, kept, speedup, q25, q75, reliable, method), ...]
    plot_speedup(points, "pareto.png", note=pareto_note(tuner, points))   # a colour per method, rings if unreliable

Each method runs at the settings of its knob in `GRID` (RLT tau, ToMe/TempMe r, keep, mild to strong), all timed
in one interleaved comparison with dense (`Tuner.time_many`: every clip each round), so a method's points share
the machine's state; kept is the mean over clips of the fraction of dense's tokens entering attention. A setting
that does not run on these clips (ToMe's r past the tokens) is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vidslim.bench.tune import KNOBS, Tuner
from vidslim.errors import ConfigError

#: knob values per method drawn on the Pareto picture (mild to strong reduction)
GRID: dict[str, tuple[float, ...]] = {
    "rlt": (0.05, 0.1, 0.2), "tome": (4, 8, 16), "tempme": (2, 6, 12), "tokenprune": (0.8, 0.6, 0.4),
    "random": (0.75, 0.5, 0.25),
}


def pareto_points(tuner: Tuner, methods: list[str] | None = None, options: dict[str, Any] | None = None,
                  progress: Callable[[str], Any] | None = None, skipped: dict[str, str] | None = None) -> list[tuple]:
    """(setting, kept, speedup, q25, q75, reliable, method) per method and setting; methods default to every
    tunable method that fits the model's family. options: fixed settings, "method.key" going to that method only
    (e.g. {"tempme.groups": (2, 2, 2)} at 8 frames). A setting that does not build is left out, and a method none
    of whose settings builds is named with the reason in `skipped`."""
    from vidslim.reduce.registry import lookup

    names = methods or [m for m in KNOBS if lookup(m).fits(tuner.source.family)]
    points = []
    for method in names:
        knob = KNOBS[method]
        fixed = {k: v for k, v in (options or {}).items()  # the knob itself is what the picture varies
                 if k.split(".")[0] == method and k != f"{method}.{knob.name}"}
        settings, kept, reason = [], [], ""
        for value in GRID[method]:
            one = {**fixed, knob.name: int(value) if knob.integer else value}
            try:
                kept.append(float(np.mean(tuner.kept(tuner.counts(method, one)))))
            except ConfigError as error:
                reason = str(error)
                continue
            settings.append(one)
        if not settings:
            if skipped is not None:
                skipped[method] = reason
            continue
        if progress is not None:
            progress(f"{method}: timing {', '.join(f'{knob.name}={s[knob.name]:g}' for s in settings)} against dense")
        for one, share, measured in zip(settings, kept, tuner.time_many(method, settings), strict=True):
            paired = measured.paired  # on the tuner's deciding clock (CPU seconds with one thread)
            points.append((f"{knob.name}={one[knob.name]:g}", share, paired.speedup, min(paired.low, paired.speedup),
                           max(paired.high, paired.speedup), paired.reliable, method))
    return points


def pareto_note(tuner: Tuner, points: list[tuple], names: Sequence[str] = ()) -> str:
    """The line(s) under the plot's title, parts separated by "; ": clips, input, threads, the machine's load,
    which clock the speedups come from, and how many points are unreliable."""
    import torch

    from vidslim.bench.precise import pick_clock
    from vidslim.bench.spread import MachineLoad

    shaky = sum(1 for p in points if not p[5])
    clock = "timed thread's CPU seconds" if pick_clock(tuner.clock) == "cpu" else "wall clock"
    parts = [f"{len(tuner.clips)} clip(s)" + (f": {', '.join(names)}" if names else ""),
             f"input {list(tuner.clips[0].shape[1:])}, {torch.get_num_threads()} thread(s)",
             MachineLoad.start().describe(), f"speedup on the {clock}", "bars: IQR of paired rounds"]
    if shaky:
        parts.append(f"{shaky} unreliable (ring, ?)")
    return "; ".join(parts)


__all__ = ["GRID", "pareto_note", "pareto_points"]
