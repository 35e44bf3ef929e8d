"""Run configuration: `TrainConfig` and its curriculum `Stage`s, loadable from YAML with key=value overrides.

    config = load_config("run.yaml", ["lr=1e-4", "stages.1.overrides.frames=8", "precision=bf16"])

Override keys are dotted paths into the YAML tree (list items by number); values are parsed as YAML
(`8`, `true`, `[1, 2]`, `null`) and coerced to the field's type (`1e-4` is a float even though YAML 1.1 reads
it as a string). Unknown keys are errors that list the valid ones. The `model`, `data` and `task` sections
are free-form dicts for the command line that builds those objects; the loop itself never reads them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from vidslim.errors import ConfigError

Precision = Literal["fp32", "bf16", "fp16"]


@dataclass
class Stage:
    """One curriculum stage: how long it lasts and what changes (SViTT's temporal sparse expansion, say).

    steps or epochs: the length (epochs of this stage's training data; fractions allowed). overrides: free-form
    settings (frames, keep ratio, ...) handed to the model's `on_stage(stage)` hook and to the loaders factory,
    which builds this stage's data. batch_size / grad_accum: replace the run's values in this stage.
    """

    name: str = ""
    steps: int | None = None
    epochs: float | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    grad_accum: int | None = None

    def __post_init__(self) -> None:
        if (self.steps is None) == (self.epochs is None):
            raise ConfigError(f"stage {self.name!r}: give exactly one of steps or epochs, got steps={self.steps} "
                              f"and epochs={self.epochs}")
        if (self.steps is not None and self.steps < 1) or (self.epochs is not None and self.epochs <= 0):
            raise ConfigError(f"stage {self.name!r}: steps / epochs must be positive")


@dataclass
class TrainConfig:
    """Everything the training loop needs besides the model, the task and the data.

    batch_size is the *global* batch of one optimiser step; each of W processes runs micro-batches of
    batch_size / (W · grad_accum). Without `stages`, `steps` or `epochs` make one stage. The schedule is a
    linear warm-up over `warmup_steps` (default ⌊warmup_ratio · total steps⌋) then a half cosine from `lr`
    to `min_lr` over all stages (spec tempme §7.5). checkpoint_every / eval_every / log_every count
    optimiser steps; 0 turns periodic checkpoints or evaluation off (a checkpoint is always written at the end).
    """

    run_dir: str = "runs/default"
    seed: int = 42
    batch_size: int = 128
    grad_accum: int = 1
    steps: int | None = None
    epochs: float | None = None
    stages: list[Stage] = field(default_factory=list)
    # optimiser and schedule
    lr: float = 6e-4
    min_lr: float = 0.0
    warmup_ratio: float = 0.1
    warmup_steps: int | None = None
    warmup_start_lr: float = 0.0
    weight_decay: float = 0.2
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-6
    grad_clip: float | None = 1.0
    # numerics
    precision: Precision = "fp32"
    deterministic: bool = False
    # data
    num_workers: int = 0
    pin_memory: bool = True
    eval_batch_size: int | None = None
    video_normalize: str | None = None
    video_layout: Literal["TCHW", "CTHW", "THWC"] = "TCHW"
    # bookkeeping
    log_every: int = 10
    eval_every: int = 0
    eval_at_end: bool = True
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    checkpoint_weights: Literal["all", "trainable"] = "all"
    resume: bool = True
    progress: bool = True
    device: str | None = None
    find_unused_parameters: bool = False
    # sections for whoever builds the model, task and data (the command line)
    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    task: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stages = [s if isinstance(s, Stage) else _build(Stage, s, "stages") for s in self.stages]
        if self.stages and (self.steps is not None or self.epochs is not None):
            raise ConfigError("TrainConfig: give either stages or steps/epochs, not both")
        if not self.stages:
            if (self.steps is None) == (self.epochs is None):
                raise ConfigError("TrainConfig: give exactly one of steps or epochs (or a list of stages)")
            self.stages = [Stage(name="main", steps=self.steps, epochs=self.epochs)]
            self.steps = self.epochs = None  # now held by the stage (keeps to_dict -> config_from_dict exact)
        checks = [
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.grad_accum >= 1, "grad_accum must be >= 1"),
            (self.lr > 0 and 0 <= self.min_lr <= self.lr, "need lr > 0 and 0 <= min_lr <= lr"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.warmup_steps is None or self.warmup_steps >= 0, "warmup_steps must be >= 0"),
            (self.grad_clip is None or self.grad_clip > 0, "grad_clip must be > 0 or null"),
            (self.precision in ("fp32", "bf16", "fp16"), "precision must be fp32, bf16 or fp16"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be >= 1"),
            (self.checkpoint_weights in ("all", "trainable"), "checkpoint_weights must be 'all' or 'trainable'"),
            (self.video_layout in ("TCHW", "CTHW", "THWC"), "video_layout must be TCHW, CTHW or THWC"),
            (min(self.log_every, self.eval_every, self.checkpoint_every) >= 0, "*_every must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"TrainConfig: {message}")
        self.betas = (float(self.betas[0]), float(self.betas[1]))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-able dict (the run folder keeps a copy)."""
        return dataclasses.asdict(self)


# --- building dataclasses from plain data, with type coercion -------------------------------------------------

def _coerce(value: Any, hint: Any, where: str) -> Any:
    """`value` converted to type `hint` where that is unambiguous (str -> float, list -> tuple, ...)."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{where}: cannot use {value!r}")
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{where}: must be one of {list(typing.get_args(hint))}, got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where}: needs {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: needs a list, got {value!r}")
        (item,) = typing.get_args(hint) or (Any,)
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: needs a mapping, got {value!r}")
        return dict(value)
    if hint is Any or dataclasses.is_dataclass(hint):
        return _build(hint, value, where) if dataclasses.is_dataclass(hint) and isinstance(value, dict) else value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{where}: needs true or false, got {value!r}")
    if hint in (int, float, str):
        wanted = {int: "an integer", float: "a number", str: "a string"}[hint]
        if isinstance(value, bool) and hint is not str:
            raise ConfigError(f"{where}: needs {wanted}, got {value!r}")
        try:
            converted = hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: needs {wanted}, got {value!r}") from None
        if hint is int and isinstance(value, float) and converted != value:
            raise ConfigError(f"{where}: needs a whole number, got {value!r}")
        return converted
    return value


def _build(cls: Any, values: Any, where: str) -> Any:
    """Instantiate dataclass `cls` from a dict, coercing each field and naming unknown keys."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: needs a mapping of {cls.__name__} fields, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {names}")
    return cls(**{k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in values.items()})


def _set_path(tree: dict[str, Any], dotted: str, value: Any, where: str) -> None:
    """tree[a][b][2][c] = value for dotted 'a.b.2.c', creating dicts on the way."""
    parts = dotted.split(".")
    node: Any = tree
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"{where}: {'.'.join(parts[:i])} has {len(node)} items; {part!r} is not one")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise ConfigError(f"{where}: {'.'.join(parts[:i])} is a value, not a section")


def parse_overrides(overrides: list[str] | tuple[str, ...], tree: dict[str, Any] | None = None) -> dict[str, Any]:
    """Apply 'a.b=value' strings (values parsed as YAML) to `tree` (a new dict by default); returns it."""
    tree = {} if tree is None else tree
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: write it as key=value, e.g. lr=1e-4 or stages.0.steps=100")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as error:
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({error})") from None
        _set_path(tree, key.strip(), value, f"override {item!r}")
    return tree


def config_from_dict(values: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """`TrainConfig` from a dict (a parsed YAML file) with key=value overrides applied on top."""
    tree = parse_overrides(overrides, _plain(values))
    return _build(TrainConfig, tree, "")


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """`TrainConfig` from a YAML file (None: defaults only) with key=value overrides applied on top."""
    values: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"{file}: config file not found; pass the path of a YAML run config")
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise ConfigError(f"{file}: not valid YAML ({error})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{file}: the top level must be a mapping of TrainConfig keys")
        values = loaded or {}
    try:
        return config_from_dict(values, overrides)
    except ConfigError as error:
        raise ConfigError(f"{path or 'config'}: {error}") from None


def _plain(values: Any) -> Any:
    """Deep copy of YAML-like data (dicts, lists, scalars; dataclasses become dicts)."""
    if dataclasses.is_dataclass(values) and not isinstance(values, type):
        return _plain(dataclasses.asdict(values))
    if isinstance(values, dict):
        return {str(k): _plain(v) for k, v in values.items()}
    if isinstance(values, (list, tuple)):
        return [_plain(v) for v in values]
    return values


__all__ = ["Precision", "Stage", "TrainConfig", "config_from_dict", "load_config", "parse_overrides"]
