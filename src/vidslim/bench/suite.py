"""Every method on one model, timed side by side with dense: tokens, FLOPs, measured speedup, reduction overhead.

    rows = bench_methods("clip-b32", "all", frames=8, repeat=3)          # random input, batch 1, fp32, eager
    print(format_table(rows))
    suite = Suite("videomae-b16", ["rlt", "rlt+tokenprune"], video=clip)  # a real clip [C, T, H, W] for RLT
    rows = suite.run(batch=4, precision="bf16", compile=True)

A `Suite` builds one model per method (dense always first, the baseline) with shared weights, counts tokens and
FLOPs per video once per method, and `run` times all of them interleaved (`vidslim.bench.timer.compare`: every
round calls every method once, rotating who goes first), so the speedups hold on a noisy machine. Each row holds:

- tokens kept: tokens entering attention per layer and video, averaged over layers, as a fraction of dense's
- GFLOPs per video (fvcore convention, reducer work included) and the FLOP ratio to dense
- the median time per batch, videos/s, the speedup over dense (ratio of medians) and the *realised* fraction of
  the FLOP saving: speedup x FLOP ratio (1.0: wall-clock falls exactly as FLOPs do; < 1: overheads eat the saving)
- the reduction's own share of the call (`vidslim.bench.overhead`: one extra, untimed, profiled call) and that share
  of the median time, in ms per batch
- with `compile=True`: the first call's seconds (compilation included), or the error when compilation fails

"all" means dense, every registered method that fits the model's family, and every pair of non-baseline methods
acting at different stages (a tokenizer, an in-model reducer, an attention pattern: rlt+tokenprune, tempme+svitt,
...) that builds for the model. Reducers' roles are read off the built objects (`embed_video`: a tokenizer,
`attention_pattern`: a pattern), so methods registered later join in without changes here.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time as _time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from vidslim.bench.overhead import reduction_overhead
from vidslim.bench.report import layer_report
from vidslim.bench.row import BenchRow, set_speedup
from vidslim.bench.source import ModelSource
from vidslim.bench.timer import compare
from vidslim.errors import ConfigError

#: methods that are baselines, never one half of an "all" combination
BASELINES = ("dense", "random")


@dataclasses.dataclass
class _Entry:
    """A built method: its model, the function to call on a batch, its reducers and per-video costs."""

    model: nn.Module
    forward: Callable[[Tensor], Any]
    reduction: tuple[str, ...]
    tokens: float = math.nan
    gflops: float = math.nan
    error: str | None = None


# ------------------------------------------------------------------------------------------------- methods
def _first_line(error: BaseException) -> str:
    """The error as "Type: first line of its message" (at most 200 characters), for a row's note."""
    first = (str(error).strip().splitlines() or [""])[0][:200]
    return f"{type(error).__name__}: {first}"


def _roles(name: str) -> set[str]:
    """Where a method's parts act ("input", "blocks", "attention"), from the reducer registry."""
    from vidslim.reduce.registry import lookup

    return {lookup(part).where for part in name.split("+") if part != "dense"}


def build_method(name: str, model: str | ModelSource, strict: bool = True, **options: Any) -> list[object]:
    """The reducers of method `name` for a model (a registered name or a `ModelSource`), through the reducer
    registry: refused before any model is built when a part does not fit the model's family; fixed seeds where a
    part takes one (reproducible rows). strict=False drops the options no part of the method takes (one option
    set for many methods). A value a reducer refuses is a one-line ConfigError."""
    from vidslim.models.registry import family_of
    from vidslim.reduce.registry import build_reduction

    if not strict:
        options = _taken(name, options)
    if isinstance(model, ModelSource):
        preset, family = model.preset, model.family
    else:
        preset, family = model, family_of(model)
    try:
        return build_reduction(name, preset, family=family, where=f"--method {name!r}", fallback={"seed": 0},
                               **options)
    except ConfigError:
        raise
    except (ValueError, TypeError) as error:  # a value a reducer's constructor refuses
        raise ConfigError(f"--method {name!r} with {options}: {_first_line(error)}") from None


def _card_reducers(card: Sequence[Any], source: ModelSource, name: str) -> list[object]:
    """The reducers of a reduction card, for this model's family (a part that does not fit is a ConfigError)."""
    from vidslim.reduce.registry import build_reduction

    try:
        return build_reduction(list(card), source.preset, family=source.family, where=f"card {name!r}")
    except ConfigError:
        raise
    except (ValueError, TypeError) as error:
        raise ConfigError(f"card {name!r}: {_first_line(error)}") from None


def resolve_methods(spec: str | Sequence[str], model: str | ModelSource, **options: Any) -> list[str]:
    """Method names to run, dense first: "all" (see the module doc), "a,b+c" or a list. Explicit names are
    checked by `build_method` (a ConfigError names the fix); "all" keeps only what builds for `model`."""
    from vidslim.reduce.registry import WHERE, summaries

    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [s.strip() for s in spec]
    names = [n for n in names if n]
    if names != ["all"]:
        if not names or "all" in names:
            raise ConfigError(f"--method {spec!r}: give 'all' alone, or method names joined by ',' (and '+')")
        for key in options:  # every option must be taken by some method of the list (a typo is an error)
            if not any(key in _taken(name, {key: None}) for name in names):
                build_method("+".join(n for n in names if n != "dense") if len(names) == 1 else names[0], model,
                             **{key: options[key]})
        for name in names:
            build_method(name, model, strict=len(names) == 1, **options)
        return ["dense", *dict.fromkeys(n for n in names if n != "dense")]
    roles: dict[str, set[str]] = {}
    for name in summaries():
        try:
            build_method(name, model, **_taken(name, options))
        except ConfigError:
            continue
        roles[name] = _roles(name)
    singles = ["dense", *(n for n in roles if n != "dense")]
    parts = [n for n in roles if n not in BASELINES and len(roles[n]) == 1]
    combos = []
    for a, b in itertools.combinations(parts, 2):
        if roles[a] != roles[b]:
            try:
                build_method(f"{a}+{b}", model, **_taken(f"{a}+{b}", options))
            except ConfigError:
                continue
            first, second = sorted((a, b), key=lambda n: WHERE.index(next(iter(roles[n]))))
            combos.append(f"{first}+{second}")
    return singles + combos


def _taken(method: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options some part of `method` takes ("all" runs every method with the options that apply to it)."""
    from vidslim.reduce.registry import lookup

    parts = [lookup(p) for p in method.split("+") if p != "dense"]
    out = {}
    for key, value in options.items():
        target, _, param = key.rpartition(".")
        for entry in parts:
            if (not target or target in (entry.name, *entry.aliases)) and param in entry.parameters():
                out[key] = value
    return out


# ------------------------------------------------------------------------------------------------- suite
class Suite:
    """One model per method, sharing the dense model's weights, and the input they all run on.

    model:     a registered model name (`vidslim.models.registry.list_models()`, random weights), anything
               `vidslim.load_model` reads (a folder, a file, a cached hub id), or a `ModelSource`
    methods:   "all", "a,b+c" or a list (dense is always added, first)
    video:     input in the model's layout, one clip or a batch ([C, T, H, W] / [B, C, T, H, W] for the video ViT,
               [T, C, H, W] / [B, T, C, H, W] for CLIP), normalised; None: random (not for RLT, whose tokens depend
               on the content). Batches are cut from it cyclically.
    frames:    frames per video (default: `video`'s, else the model's config); also set as the model's num_frames
               unless `overrides` sets it, since frame schedules (TempMe's groups) read it there
    overrides: model config fields (e.g. vision_layers=2); options: method options (`build_reduction`)
    full_last_layer: CLIP runs its last block on every token, not only the CLS tokens
    cards:     extra rows built from reduction cards: row name -> card (`vidslim.reduce.cards`), timed like methods
    steps:     called as steps(stage, done, total) while methods are built and counted ("count") and while `run`
               profiles the reducers ("profile"): minutes of work before and after the timed rounds on big models,
               which a progress bar should cover too
    """

    def __init__(
        self,
        model: str | ModelSource,
        methods: str | Sequence[str] = "all",
        video: Tensor | None = None,
        *,
        frames: int | None = None,
        overrides: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
        full_last_layer: bool = False,
        skip_broken: bool | None = None,
        cards: Mapping[str, Sequence[Any]] | None = None,
        steps: Callable[[str, int, int], Any] | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.steps = steps or (lambda stage, done, total: None)
        options, overrides = dict(options or {}), dict(overrides or {})
        if isinstance(model, str) and frames is None and video is not None:  # the time axis in the model's layout
            spec = ModelSource.open(model, **overrides).spec
            frames = int(video.shape[spec.frame_axis - (5 - video.dim())])
        if frames is not None:
            overrides.setdefault("num_frames", frames)  # reducers with a frame schedule (TempMe) read the config
        if isinstance(model, ModelSource) and {**model.overrides, **overrides} != model.overrides:
            model = ModelSource.open(model.name, **{**model.overrides, **overrides})  # e.g. the clip's frames
        source = model if isinstance(model, ModelSource) else ModelSource.open(model, **overrides)
        self.source = source
        self.model_name = source.name
        cards = dict(cards or {})
        self.methods = resolve_methods(methods, source, **options) + list(cards)
        skip = (methods == "all" or list(methods) == ["all"]) if skip_broken is None else skip_broken
        self.skipped: dict[str, str] = {}
        self.entries: dict[str, _Entry] = {}
        base: dict[str, Tensor] | None = None
        for i, name in enumerate(self.methods):
            self.steps("count", i, 2 * len(self.methods))  # building is half the work, counting the other half
            torch.manual_seed(seed)
            try:
                reducers = (_card_reducers(cards[name], source, name) if name in cards
                            else build_method(name, source, strict=False, **options))
                net = source.build(reducers)
            except ConfigError as error:
                if not skip or name == "dense":
                    raise
                self.skipped[name] = str(error)
                continue
            if base is None:
                net.to(self.device)
                base = net.state_dict()
            elif source.base is None:
                net.load_state_dict(base, strict=False, assign=True)  # share the dense weights
                net.to(self.device)
            else:
                net.to(self.device)  # a loaded checkpoint's copies share its weights already
            if full_last_layer and hasattr(net, "visual"):  # CLIP's last block on every token, not only the CLS
                net.visual.cls_readout = False
            forward = net
            self.entries[name] = _Entry(net, forward, tuple(repr(r) for r in reducers))
        self.methods = [n for n in self.methods if n in self.entries]
        dense = self.entries["dense"].model
        self.family: str = dense.family
        self.spec = dense.input_spec
        self.video = self._input(video, frames, seed)
        self.frames = self.video.shape[self.spec.frame_axis]
        self._count()

    def _input(self, video: Tensor | None, frames: int | None, seed: int) -> Tensor:
        if video is None:
            video = self.spec.random(1, frames, generator=torch.Generator().manual_seed(seed))
        if video.dim() == 4:
            video = video[None]
        if video.dim() != 5:
            raise ConfigError(
                f"video= takes one clip (4-D) or a batch (5-D) in the model's layout, got {tuple(video.shape)}"
            )
        return video.to(self.device)

    def _count(self) -> None:
        """Tokens per layer and GFLOPs per video of every method, in one counted pass over the distinct clips."""
        videos = self.video.shape[0]
        total = len(self.entries)
        for i, (name, entry) in enumerate(self.entries.items()):
            self.steps("count", total + i, 2 * total)
            try:
                report = layer_report(entry.forward, self.video, videos=videos, root=entry.model)
            except Exception as error:  # a method that fails to run becomes its row's note; dense must run
                if name == "dense":
                    raise
                entry.error = f"failed: {_first_line(error)}"
                continue
            rows = report.rows
            entry.tokens = sum(r.tokens_attn for r in rows) / len(rows) if rows else math.nan
            entry.gflops = report.gflops_per_video
        self.steps("count", 2 * total, 2 * total)

    def batch_input(self, batch: int) -> Tensor:
        """`batch` clips cut cyclically from the suite's input."""
        if batch < 1:
            raise ConfigError(f"batch must be >= 1, got {batch}")
        index = torch.arange(batch, device=self.device) % self.video.shape[0]
        return self.video.index_select(0, index).contiguous()

    def caller(self, forward: Callable[[Tensor], Any], x: Tensor, precision: str) -> Callable[[], Any]:
        """A no-argument call of `forward(x)` under inference mode and the precision's autocast."""
        if precision not in ("fp32", "bf16"):
            raise ConfigError(f"precision {precision!r}: use fp32 or bf16")
        device, bf16 = self.device.type, precision == "bf16"

        def call() -> Any:
            with torch.inference_mode(), torch.autocast(device, torch.bfloat16, enabled=bf16):
                return forward(x)

        return call

    def dense_call(self, batch: int, precision: str = "fp32") -> Callable[[], Any]:
        """One call of the dense model on `batch` videos (what the saturating-batch search times)."""
        return self.caller(self.entries["dense"].forward, self.batch_input(batch), precision)

    def run(
        self,
        batch: int = 1,
        precision: str = "fp32",
        compile: bool = False,
        warmup: int = 1,
        repeat: int = 5,
        overhead: bool = True,
        time: bool = True,
        progress: Callable[[], Any] | None = None,
    ) -> list[BenchRow]:
        """Time every method interleaved at one setting; one row per method, dense first. time=False: tokens and
        FLOPs only (nothing is timed or profiled); `progress` is called after every timed round."""
        x = self.batch_input(batch)
        mode = "compiled" if compile else "eager"
        rows = {
            name: BenchRow(name, mode, batch, precision, str(self.device), reduction=entry.reduction)
            for name, entry in self.entries.items()
        }
        calls: dict[str, Callable[[], Any]] = {}
        for name, entry in self.entries.items():
            forward = entry.forward
            if entry.error is not None:
                rows[name].error = entry.error
                continue
            if compile and time:
                try:
                    forward = torch.compile(forward)
                    call = self.caller(forward, x, precision)
                    began = _time.perf_counter()
                    call()
                    if self.device.type == "cuda":
                        torch.cuda.synchronize()
                    rows[name].compile_s = _time.perf_counter() - began
                except Exception as error:  # any compiler failure becomes the row's note
                    rows[name].error = f"compile failed: {_first_line(error)}"
                    continue
            calls[name] = self.caller(forward, x, precision)
        if calls and time:
            comparison = compare(
                calls, baseline=next(iter(calls)), warmup=warmup, repeat=repeat, device=self.device.type,
                items_per_call=batch, memory=False, progress=progress,
            )  # fmt: skip
            has_dense = "dense" in calls
            for name in calls:
                row, timing = rows[name], comparison.timings[name]
                row.time_ms, row.videos_per_s = timing.median * 1e3, timing.throughput()
                row.threads = torch.get_num_threads()
                if has_dense:
                    set_speedup(row, comparison.paired(name))
        dense = self.entries["dense"]
        for name, entry in self.entries.items():
            row = rows[name]
            row.tokens, row.gflops = entry.tokens, entry.gflops
            row.token_fraction = entry.tokens / dense.tokens if dense.tokens else None
            row.flop_ratio = entry.gflops / dense.gflops if dense.gflops else None
            row.set_realised()
            if overhead and time and name in calls:
                self.steps("profile", list(calls).index(name), len(calls))
                split = reduction_overhead(calls[name], entry.model, self.device.type)
                row.overhead_pct = split.percent
                row.overhead_ms = split.percent / 100.0 * row.time_ms if row.time_ms is not None else split.reduce_ms
                row.overhead_by_label = split.by_label
        if overhead and time and calls:
            self.steps("profile", len(calls), len(calls))
        return list(rows.values())


def bench_methods(
    model: str,
    methods: str | Sequence[str] = "all",
    video: Tensor | None = None,
    *,
    batch: int = 1,
    precision: str = "fp32",
    device: str | torch.device = "cpu",
    compile: bool = False,
    warmup: int = 1,
    repeat: int = 5,
    overhead: bool = True,
    time: bool = True,
    **suite_options: Any,
) -> list[BenchRow]:
    """Build a `Suite` and run it once: one row per method (dense first). `suite_options` go to `Suite`
    (frames, overrides, options, seed, full_last_layer)."""
    suite = Suite(model, methods, video, device=device, **suite_options)
    return suite.run(batch, precision, compile, warmup, repeat, overhead, time)


# ------------------------------------------------------------------------------------------------- table
Column = tuple[str, str, Callable[[BenchRow], Any]]
#: shown only when the rows differ in them (the title line names a single mode, batch and precision)
_SETTING_COLUMNS: tuple[Column, ...] = (
    ("mode", "<", lambda r: r.mode),
    ("batch", ">", lambda r: r.batch),
    ("prec", "<", lambda r: r.precision),
)
_CPU_COLUMN: Column = ("cpu speedup [IQR]", ">", lambda r: r.cpu_speedup_text())


def _f(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:{spec}}{suffix}"


def _columns(rows: Sequence[BenchRow]) -> list[Column]:
    """The columns for these rows: mode, batch and precision where they differ, the CPU-time speedup at one thread."""
    columns: list[Column] = [("method", "<", lambda r: r.method)]
    columns += [c for c in _SETTING_COLUMNS if len({str(c[2](r)) for r in rows}) > 1]
    columns += [
        ("kept", ">", lambda r: _f(r.token_fraction, ".3f")),
        ("GFLOPs", ">", lambda r: _f(r.gflops, ".2f")),
        ("FLOP ratio", ">", lambda r: _f(r.flop_ratio, ".3f")),
        ("ms", ">", lambda r: _f(r.time_ms, ".1f")),
        ("speedup [IQR]", ">", lambda r: r.speedup_text()),
    ]
    if any(r.cpu_speedup_shown for r in rows):
        columns.append(_CPU_COLUMN)
    columns += [
        ("realised [IQR]", ">", lambda r: r.realised_text()),
        ("reduce", ">", lambda r: _f(r.overhead_pct, ".1f", "%")),
    ]
    return columns


def format_table(rows: Sequence[BenchRow]) -> str:
    """A plain-text table of suite rows: tokens kept and FLOPs as fractions of dense, median time per batch,
    speedup over dense (and, at one CPU thread, the timed thread's CPU-time speedup), realised fraction of the FLOP
    saving (speedup x FLOP ratio), the reducers' share of the time (ms in the JSON); mode, batch and precision
    where the rows differ in them; a compile-seconds column when any row was compiled, decode and model ms per
    video with end-to-end input, and a row's error after its figures."""
    columns = _columns(rows)
    if any(r.mode == "compiled" for r in rows):
        columns.append(("compile s", ">", lambda r: _f(r.compile_s, ".1f")))
    if any(r.decode_ms_per_video is not None for r in rows):
        columns.append(("decode ms/vid", ">", lambda r: _f(r.decode_ms_per_video, ".1f")))
        columns.append(("model ms/vid", ">", lambda r: _f(r.model_ms_per_video, ".1f")))
    cells = [[str(get(r)) for _, _, get in columns] for r in rows]
    widths = [max([len(head), *(len(c[i]) for c in cells)]) for i, (head, _, _) in enumerate(columns)]
    lines = ["  ".join(f"{head:{align}{w}}" for (head, align, _), w in zip(columns, widths, strict=True))]
    for row, cell in zip(rows, cells, strict=True):
        line = "  ".join(f"{c:{align}{w}}" for c, (_, align, _), w in zip(cell, columns, widths, strict=True))
        lines.append(line + (f"  ! {row.error}" if row.error else ""))
    shaky = [r for r in rows if (r.speedup is not None and not r.reliable)
             or (r.cpu_speedup_shown and not r.cpu_reliable)]
    if shaky:
        first = next((r.verdict for r in shaky if not r.reliable), None) or "the CPU-time rounds scatter too much"
        lines.append(f"~x?: not a measurement to quote ({first}); rerun on a quieter machine or with more --repeat")
    return "\n".join(lines)


def shared_settings(rows: Sequence[BenchRow]) -> str:
    """ "batch 1, fp32, eager, " for the title line: the settings every row shares (the table has no column for
    them), or "" when the rows differ in all of them."""
    same = [{r.batch for r in rows}, {r.precision for r in rows}, {r.mode for r in rows}]
    names = ("batch ", "", "")
    return "".join(f"{name}{values.pop()}, " for name, values in zip(names, same, strict=True) if len(values) == 1)


def table_legend(rows: Sequence[BenchRow]) -> str:
    """The lines under `format_table`'s table that say what its columns mean."""
    lines = ["kept: tokens into attention per layer vs dense; ms: median per batch; realised: speedup x FLOP ratio "
             "(1.0: time falls as FLOPs do); reduce: the reducers' own share of the time (profiled pass; ms in --json)"]
    if any(r.cpu_speedup_shown for r in rows):
        lines.append("cpu speedup: the same rounds on the timed thread's CPU seconds, which another busy process "
                     "does not stretch at one thread")
    return "\n".join(lines)
