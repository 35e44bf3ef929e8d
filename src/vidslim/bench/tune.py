"""Budget tuning: the setting of a method's knob that meets a target on the user's own clips.

    result = tune("videomae-b16", ["a.mp4", "b.mp4"], "speedup=2", method="rlt")
    result.value, result.predicted, result.measured, result.kept_spread, result.card
    write_card("card.json", result.card, **result.to_dict())     # what `--card` reads, with the frames and config

Targets: `gflops=X` (GFLOPs per clip, mean over the clips), `keep=F` (tokens into attention, a fraction of
dense's), `speedup=S` (over dense, measured) and `ms=T` (ms per clip, measured). Knobs: RLT `tau`, ToMe and TempMe
`r` (TempMe keeps its paper schedule for the backbone otherwise), TokenPrune and random masking `keep`.

How: FLOPs and tokens are counted exactly on every clip (`layer_report`, one pass per clip and knob value, cached),
and the knob is found by bisection on that count (the count falls monotonically as tau or r grow, and rises with
keep). RLT keeps a different number of tokens on every clip, so its count is the mean over the sample and the
spread across clips (min, max of kept fraction) is reported with it.

A time target (`speedup`, `ms`) is solved against a model of time vs FLOPs calibrated on measurements
(`vidslim.bench.time_model`): the FLOP ratio predicted to give the wanted time is solved on the exact counts, that
setting is timed against dense with the interleaved paired timer (`vidslim.bench.timer.compare`, every clip each
round), the model is refitted on every point measured so far, and the loop repeats (at most three rounds). An
integer knob (ToMe, TempMe r) moves the cost in whole steps, so its two settings either side of the prediction are
timed together in one comparison and the target is bracketed; the setting whose measured figure is nearest the
target wins. Picking the nearest of noisy figures flatters the winner, so the winner is then timed once more on
fresh rounds, and that confirmation is the measured figure reported (with its spread and verdict); the earlier
measurements stay in `steps`. Every timing runs in chunks of `repeat` rounds until the paired speedup is precise
(`vidslim.bench.precise`), and with one CPU thread it is decided on the timed thread's CPU seconds, which another
busy process does not skew; the wall-clock figure is reported beside it.

What the card does not promise: accuracy. Nothing here sees labels; the card says so in `does_not_promise`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidslim.bench.source import ModelSource
from vidslim.errors import ConfigError

TARGETS = ("speedup", "gflops", "keep", "ms")
DOES_NOT_PROMISE = [
    "accuracy: no labels were seen; measure it with `vidslim eval` on labelled data before relying on this setting",
    "speed on other hardware, batch sizes, thread counts or precisions than the ones measured here",
    "the same token count on other videos: content-adaptive methods (RLT) keep more tokens on busier clips",
]


@dataclasses.dataclass(frozen=True)
class Knob:
    """The setting tuned for a method: its name, range, whether it is an integer and whether cost rises with it."""

    name: str
    low: float
    high: float
    integer: bool
    cost_rises: bool


KNOBS = {
    "rlt": Knob("tau", 0.0, 1.0, False, False),
    "tome": Knob("r", 0, 64, True, False),
    "tempme": Knob("r", 0, 24, True, False),
    "tokenprune": Knob("keep", 0.02, 1.0, False, True),
    "random": Knob("keep", 0.02, 1.0, False, True),
}


def check_method(method: str, source: ModelSource | None = None, settings: dict[str, Any] | None = None
                 ) -> tuple[str, Knob]:
    """The part of `method` whose knob is tuned and that knob. A one-line ConfigError, before any clip is read or
    anything is counted or timed, when no part has a knob, or (given the model) a part is unknown, does not fit the
    model's family or refuses a setting (through the reducer registry, as bench builds methods)."""
    parts = method.split("+")
    part = parts[-1] if parts[-1] in KNOBS else parts[0]
    if part not in KNOBS:
        raise ConfigError(f"--method {method!r}: tune knows the knobs of {', '.join(KNOBS)}")
    if source is not None:
        from vidslim.bench.suite import build_method

        build_method(method, source, **(settings or {}))
    return part, KNOBS[part]


def parse_target(text: str) -> tuple[str, float]:
    """'speedup=2' -> ('speedup', 2.0); a one-line ConfigError otherwise."""
    match = re.fullmatch(r"\s*(\w+)\s*=\s*([0-9.eE+-]+)\s*", text)
    if not match or match.group(1) not in TARGETS:
        raise ConfigError(f"--target {text!r}: write one of speedup=2, gflops=60, keep=0.5, ms=300")
    kind = match.group(1)
    try:
        value = float(match.group(2))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0 or (kind == "keep" and value > 1):
        raise ConfigError(f"--target {text!r}: give a positive number (keep: a fraction in (0, 1])")
    return kind, value


@dataclasses.dataclass
class Counts:
    """Exact per-clip cost of one setting: GFLOPs and tokens into attention (mean over layers) per clip."""

    gflops: list[float]
    tokens: list[float]

    @property
    def mean_gflops(self) -> float:
        return float(np.mean(self.gflops))


@dataclasses.dataclass
class TuneResult:
    """What `tune` found: the setting, what it costs (predicted and measured) and the card that applies it."""

    model: str
    method: str
    knob: str
    value: float
    target: str
    settings: dict[str, Any]
    card: list[dict[str, Any]]
    predicted: dict[str, float]
    measured: dict[str, Any]
    kept: list[float]
    steps: list[dict[str, Any]]
    notes: list[str]
    reached: bool
    frames: int | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def kept_spread(self) -> tuple[float, float, float]:
        """(min, mean, max) fraction of dense's tokens kept across the clips."""
        return min(self.kept), float(np.mean(self.kept)), max(self.kept)

    def to_dict(self) -> dict[str, Any]:
        lo, mean, hi = self.kept_spread
        return {"model": self.model, "method": self.method, "target": self.target, "knob": self.knob,
                "value": self.value, "settings": self.settings, "reached": self.reached, "predicted": self.predicted,
                "measured": self.measured, "kept_per_clip": self.kept,
                "kept_spread": {"min": lo, "mean": mean, "max": hi}, "steps": self.steps, "notes": self.notes,
                "does_not_promise": DOES_NOT_PROMISE, "frames": self.frames,
                "config": self.config}  # fmt: skip


class Tuner:
    """The clips, the dense model and cached counts and timings of one model; `solve` tunes one method."""

    def __init__(self, model: str | ModelSource, clips: Sequence[torch.Tensor], *, repeat: int = 5,
                 max_rounds: int | None = None, clock: str = "auto",
                 progress: Callable[[str], Any] | None = None) -> None:
        self.source = model if isinstance(model, ModelSource) else ModelSource.open(model)
        if self.source.base is None:  # one set of random weights shared by every setting
            torch.manual_seed(0)
            self.source.base = self.source.build([])
        self.clips = [c if c.dim() == 5 else c[None] for c in clips]
        self.repeat, self.max_rounds, self.clock = repeat, max_rounds or 3 * repeat, clock
        self.say = progress or (lambda message: None)
        self._counts: dict[tuple[str, str], Counts] = {}
        self.dense = self.counts("dense", {})
        self._dense_ms: float | None = None

    # ------------------------------------------------------------------------------------------- counting
    def build(self, method: str, settings: dict[str, Any]) -> torch.nn.Module:
        from vidslim.bench.suite import build_method

        return self.source.build(build_method(method, self.source, **settings) if method != "dense" else [])

    def counts(self, method: str, settings: dict[str, Any]) -> Counts:
        """Exact GFLOPs and tokens per clip of `method` at `settings` (cached)."""
        from vidslim.bench.report import layer_report

        key = (method, repr(sorted(settings.items())))
        if key not in self._counts:
            net = self.build(method, settings)
            gflops, tokens = [], []
            for clip in self.clips:
                report = layer_report(net, clip, root=net)
                gflops.append(report.gflops_per_video)
                tokens.append(float(np.mean([r.tokens_attn for r in report.rows])) if report.rows else math.nan)
            self._counts[key] = Counts(gflops, tokens)
        return self._counts[key]

    def kept(self, counts: Counts) -> list[float]:
        return [t / d for t, d in zip(counts.tokens, self.dense.tokens, strict=True)]

    # ------------------------------------------------------------------------------------------- timing
    def time(self, method: str, settings: dict[str, Any]) -> Any:
        """`method` at `settings` against dense on the clips (`vidslim.bench.precise.Measured`)."""
        return self.time_many(method, [settings])[0]

    def time_many(self, method: str, settings: Sequence[dict[str, Any]]) -> list[Any]:
        """`Measured` (paired speedup over dense on both clocks, ms per clip) of `method` at each of `settings`, all
        timed in one interleaved comparison with dense, in chunks of `repeat` rounds until precise or `max_rounds`."""
        from vidslim.bench.precise import time_until_precise

        def run(model: torch.nn.Module) -> Callable[[], None]:
            def call() -> None:
                with torch.inference_mode():
                    for clip in self.clips:
                        model(clip)

            return call

        contenders = {"dense": run(self.build("dense", {}))}
        for i, one in enumerate(settings):
            contenders[str(i)] = run(self.build(method, one))
        found = time_until_precise(contenders, items=len(self.clips), repeat=self.repeat, max_rounds=self.max_rounds,
                                   clock=self.clock, progress=lambda rounds: self.say(
                                       f"  {rounds} paired rounds of {len(contenders)} models timed "
                                       f"(stops when precise, at most {self.max_rounds})"))  # fmt: skip
        self._dense_ms = found["dense"].time_ms
        return [found[str(i)] for i in range(len(settings))]

    # ------------------------------------------------------------------------------------------- solving
    def bisect(self, method: str, base: dict[str, Any], knob: Knob, goal: Callable[[Counts], float],
               want: float, steps: list[dict[str, Any]]) -> tuple[float, Counts]:
        """The knob value whose `goal(counts)` is closest to `want` (goal monotone in the knob)."""
        lo, hi = knob.low, knob.high

        def at(v: float) -> float | None:
            try:
                counts = self.counts(method, {**base, knob.name: int(v) if knob.integer else v})
            except ConfigError:  # past what the reducer can do on these clips (ToMe's r > tokens / 2, say)
                return None
            value = goal(counts)
            steps.append({knob.name: v, "value": value})
            return value

        def above(value: float) -> bool:  # is the cost still above what we want (need more reduction)?
            return value > want

        # with cost falling in the knob: too costly at v -> go higher
        for _ in range(14):
            if (hi - lo) <= (1 if knob.integer else 1e-3):
                break
            mid = (lo + hi) // 2 if knob.integer else (lo + hi) / 2
            value = at(mid)
            if value is None:  # too strong a setting: step back towards the mild end
                if knob.cost_rises:
                    lo = mid
                else:
                    hi = mid
            elif above(value) != knob.cost_rises:
                lo = mid
            else:
                hi = mid
        candidates = [v for v in (lo, hi) if at(v) is not None]
        if not candidates:
            raise ConfigError(f"{method}: no {knob.name} in [{knob.low:g}, {knob.high:g}] runs on these clips")
        best = min(candidates, key=lambda v: abs(at(v) - want))  # type: ignore[operator]
        value = int(best) if knob.integer else float(best)
        return value, self.counts(method, {**base, knob.name: value})

    def solve(self, method: str, target: str, settings: dict[str, Any] | None = None) -> TuneResult:
        """Tune `method`'s knob to `target` ("speedup=2", "gflops=60", "keep=0.5", "ms=300")."""
        from vidslim.reduce.cards import reduction_card

        kind, want = parse_target(target)
        part, knob = check_method(method, self.source, settings)
        key = f"{part}.{knob.name}" if "+" in method else knob.name
        base = dict(settings or {})
        steps: list[dict[str, Any]] = []
        notes: list[str] = []
        dense_gflops = self.dense.mean_gflops
        one = Knob(key, knob.low, knob.high, knob.integer, knob.cost_rises)
        measured: dict[str, Any] = {}
        if kind == "gflops":
            value, counts = self.bisect(method, base, one, lambda c: c.mean_gflops, want, steps)
        elif kind == "keep":
            value, counts = self.bisect(method, base, one, lambda c: float(np.mean(self.kept(c))), want, steps)
        else:
            value, counts, measured = self._solve_time(method, base, one, kind, want, steps, notes)
        predicted = {"gflops": counts.mean_gflops, "flop_ratio": counts.mean_gflops / dense_gflops,
                     "keep": float(np.mean(self.kept(counts)))}  # fmt: skip
        if "predicted_speedup" in measured:
            predicted["speedup"] = measured.pop("predicted_speedup")
        if "predicted_ms" in measured:
            predicted["ms"] = measured.pop("predicted_ms")
        final = {**base, key: value}
        got = {"gflops": predicted["gflops"], "keep": predicted["keep"], "speedup": measured.get("speedup"),
               "ms": measured.get("ms")}[kind]  # fmt: skip
        tolerance = 0.05 if kind in ("gflops", "keep") else 0.15
        reached = got is not None and abs(got / want - 1) <= tolerance
        if not reached:
            notes.append(f"{target} not reached within {tolerance:.0%}: the closest {knob.name} in "
                         f"[{knob.low:g}, {knob.high:g}] gives {kind} {got if got is None else round(got, 3)}")
        card = reduction_card(self.build(method, final).reduction)
        config = {k: v for k, v in self.source.overrides.items() if k != "num_frames"}  # what the card was tuned at
        return TuneResult(self.source.name, method, key, value, target, final, card, predicted, measured,
                          self.kept(counts), steps, notes, reached, self.source.config.num_frames, config)

    def _solve_time(self, method: str, base: dict[str, Any], knob: Knob, kind: str, want: float,
                    steps: list[dict[str, Any]], notes: list[str]) -> tuple[float, Counts, dict[str, Any]]:
        """Calibrate time vs FLOPs on measured settings, bracket an integer knob, confirm the winner (module doc)."""
        from vidslim.bench.time_model import TimeModel

        dense_gflops = self.dense.mean_gflops
        model = TimeModel()
        seen: dict[float, tuple[Counts, float]] = {}  # knob value -> (counts, measured figure)

        def figure(m: Any) -> float:
            return m.speedup if kind == "speedup" else m.time_ms

        def miss(got: float) -> float:  # how far a figure is from the target, symmetric in over and under
            return abs(math.log(got / want)) if got > 0 and math.isfinite(got) else math.inf

        def wanted_time_ratio() -> float:
            if kind == "speedup":
                return 1.0 / want
            if self._dense_ms is None:
                self.time_many(method, [])
            return want / self._dense_ms  # type: ignore[operator]

        def towards(value: float) -> float | None:
            """The next integer setting from `value` in the direction that moves its figure towards the target."""
            got = seen[value][1]
            more = got < want if kind == "speedup" else got > want  # still too slow: reduce more
            step = 1 if more != knob.cost_rises else -1
            nxt = value + step
            return nxt if knob.low <= nxt <= knob.high else None

        for _ in range(3):
            goal = model.flop_ratio_for(wanted_time_ratio())
            value, counts = self.bisect(method, base, knob, lambda c: c.mean_gflops / dense_gflops, goal, steps)
            candidates = [value]
            if knob.integer:  # the neighbour on the other side of the prediction, so the pair brackets the target
                predicted = model.predict(counts.mean_gflops / dense_gflops)
                more = predicted > wanted_time_ratio()
                other = value + (1 if more != knob.cost_rises else -1)
                if knob.low <= other <= knob.high:
                    candidates.append(other)
                if seen:  # and the step from the best so far towards the target
                    nxt = towards(min(seen, key=lambda v: miss(seen[v][1])))
                    candidates += [] if nxt is None else [nxt]
            fresh = []
            for v in dict.fromkeys(candidates):
                if v in seen:
                    continue
                try:
                    fresh.append((v, self.counts(method, {**base, knob.name: v})))
                except ConfigError:  # past what the reducer can do on these clips
                    continue
            if not fresh:
                break
            self.say(", ".join(f"{knob.name}={v:g} (FLOP ratio {c.mean_gflops / dense_gflops:.3f})" for v, c in fresh)
                     + ": timing against dense")
            timed = self.time_many(method, [{**base, knob.name: v} for v, _ in fresh])
            for (v, c), m in zip(fresh, timed, strict=True):
                seen[v] = (c, figure(m))
                model.add(c.mean_gflops / dense_gflops, 1.0 / m.speedup)
                steps.append({knob.name: v, "flop_ratio": c.mean_gflops / dense_gflops, "measured_" + kind: figure(m),
                              "clock": m.clock, "rounds": m.paired.n, "spread": m.paired.spread,
                              "reliable": m.paired.reliable, "wall_speedup": m.wall.speedup})  # fmt: skip
            best = min(seen, key=lambda v: miss(seen[v][1]))
            if miss(seen[best][1]) <= math.log(1.05):
                break
            if knob.integer:
                nxt = towards(best)
                if nxt is None or nxt in seen:  # bracketed: no whole step lands nearer
                    break
        if not seen:
            raise ConfigError(f"{method}: no {knob.name} in [{knob.low:g}, {knob.high:g}] runs on these clips")
        value = min(seen, key=lambda v: miss(seen[v][1]))
        counts = seen[value][0]
        self.say(f"{knob.name}={value:g} chosen; timing it again on fresh rounds to confirm")
        m = self.time(method, {**base, knob.name: value})
        steps.append({knob.name: value, "confirm": True, "measured_" + kind: figure(m), "clock": m.clock,
                      "rounds": m.paired.n, "spread": m.paired.spread, "reliable": m.paired.reliable,
                      "wall_speedup": m.wall.speedup})  # fmt: skip
        predicted_ratio = model.predict(counts.mean_gflops / dense_gflops)
        measured = {**m.to_dict(), "ms": m.time_ms, "wall_ms": m.ms, "dense_ms": self._dense_ms,
                    "fixed_share": model.fixed, "predicted_speedup": 1.0 / predicted_ratio,
                    "predicted_ms": (self._dense_ms or math.nan) * predicted_ratio}  # fmt: skip
        if m.clock == "cpu":
            notes.append(f"timed on the timed thread's CPU seconds (one thread; a wait for a core does not count); "
                         f"wall clock: {m.wall.label()}")
        if not m.paired.reliable:
            notes.append(f"the confirming measurement is {m.paired.verdict}; rerun on a quieter machine")
        return value, counts, measured


def read_clips(paths: Sequence[str | Path], source: ModelSource, frames: int | None = None) -> list[torch.Tensor]:
    """Each video's first `frames` frames (default: the model's) at its own rate, prepared as the model takes
    them: one [1, ...] clip per video."""
    from vidslim.io.probe import probe
    from vidslim.io.video import read_video

    spec = source.spec
    frames = frames or spec.num_frames
    clips = []
    for path in paths:
        video = read_video(path, num_frames=frames, fps=probe(path).fps or 25.0, size=spec.image_size).frames
        clips.append(spec.prepare(video))
    if not clips:
        raise ConfigError("tune needs at least one video: pass --video PATH (several for a better estimate)")
    return clips


def combination_note(tuner: Tuner, result: TuneResult) -> str | None:
    """When RLT before the tuned in-model method reaches the budget more cheaply, say so (FLOPs only, not timed):
    either rlt+METHOD reaches the same FLOPs with a milder knob (rlt+tempme at r=4 against tempme alone at r=10), or
    RLT already removes more than the budget asks on these clips (RLT alone at its default tau costs fewer FLOPs than
    the tuned setting), so `--method rlt` meets it with no merging or pruning at all."""
    from vidslim.reduce.registry import lookup

    method = result.method
    if "+" in method or method == "rlt" or not lookup("rlt").fits(tuner.source.family):
        return None
    gflops = result.predicted["gflops"]
    combo = f"rlt+{method}"
    knob = KNOBS[method]
    try:
        fixed = {k: v for k, v in result.settings.items() if k != result.knob}  # e.g. TempMe's groups
        mild = tuner.solve(combo, f"gflops={gflops:.6g}", fixed)
        alone = tuner.counts("rlt", {}).mean_gflops
    except ConfigError:
        return None
    milder = mild.value > result.value if knob.cost_rises else mild.value < result.value
    if mild.reached and milder:
        return (f"{combo} reaches the same {gflops:.3g} GFLOPs per clip with {method} {knob.name}={mild.value:g} "
                f"instead of {knob.name}={result.value:g} (RLT at its default tau drops repeated tubelets first; "
                f"counted, not timed): try `--method {combo}`")
    if alone <= gflops:
        return (f"RLT alone (default tau) costs {alone:.3g} GFLOPs per clip on these clips, less than the {gflops:.3g} "
                f"of {method} {knob.name}={result.value:g} (counted, not timed): the repetition in these clips meets "
                f"the budget without any {method}; try `--method rlt`, which tunes tau to the target, or "
                f"`--method {combo}`")
    return None


def tune(model: str | ModelSource, videos: Sequence[str | Path], target: str, method: str = "rlt", *,
         frames: int | None = None, repeat: int = 5, max_rounds: int | None = None, clock: str = "auto",
         settings: dict[str, Any] | None = None, compare_combination: bool = True,
         progress: Callable[[str], Any] | None = None) -> TuneResult:
    """Tune `method` on `model` (a registered name or anything `load_model` reads) to `target` on `videos`.

    frames: frames per clip (default the model's); repeat: timed rounds per chunk; max_rounds: at most this many
    (default 3 x repeat); clock: "auto", "wall" or "cpu" (`vidslim.bench.precise`); settings: other settings of the
    method kept fixed. Returns a `TuneResult` (see the module docstring)."""
    source = model if isinstance(model, ModelSource) else ModelSource.open(model, **(
        {"num_frames": frames} if frames else {}))
    parse_target(target)
    check_method(method, source, settings)  # a bad method or setting is one line before any clip is read
    tuner = Tuner(source, read_clips(videos, source, frames), repeat=repeat, max_rounds=max_rounds, clock=clock,
                  progress=progress)
    result = tuner.solve(method, target, settings)
    if compare_combination:
        note = combination_note(tuner, result)
        if note:
            result.notes.append(note)
    return result


__all__ = ["DOES_NOT_PROMISE", "KNOBS", "TARGETS", "Knob", "TuneResult", "Tuner", "check_method", "parse_target",
           "read_clips", "tune"]
