"""Run configuration: `TrainConfig` and its curriculum `Stage`s, loadable from YAML with key=value overrides.

    config = load_config("run.yaml", ["lr=1e-4", "stages.1.overrides.frames=8", "precision=bf16"])

Override keys are dotted paths into the YAML tree (list items by number); values are parsed as YAML
(`8`, `true`, `[1, 2]`, `null`) and coerced to the field's type (`1e-4` is a float even though YAML 1.1 reads
it as a string). Unknown keys are errors that list the valid ones. The `model`, `data` and `task` sections
are free-form dicts for the command line that builds those objects; the loop itself never reads them, but the
few numbers in `data` that size every clip (`frames`, `size`, ...) are checked here, so a bad one is named
before any video is opened.

A small config must not be able to demand unbounded work: YAML is read by `load_yaml`, which refuses files over
`MAX_YAML_BYTES`, documents nested deeper than `MAX_YAML_DEPTH`, and documents whose anchors and aliases expand
to more than `MAX_YAML_NODES` nodes (a few hundred bytes of nested aliases, "billion laughs", otherwise expand
to billions of items when the tree is copied). Every number must be finite and in its range.
"""

from __future__ import annotations

import dataclasses
import math
import stat
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from vidslim.errors import ConfigError, SamplingError, printable
from vidslim.io.limits import check_fps, check_frames, check_size

Precision = Literal["fp32", "bf16", "fp16"]

MAX_YAML_BYTES = 4 << 20
MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 100_000


# --- bounded YAML ---------------------------------------------------------------------------------------------

def _expanded_size(root: yaml.Node, where: str) -> int:
    """Nodes of the document with every alias expanded, counted without expanding (shared nodes memoised).

    Raises ConfigError past MAX_YAML_NODES, past MAX_YAML_DEPTH, or on an alias that contains itself.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(f"{where}: an alias refers to a node that contains it (a recursive YAML structure)")
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(f"{where}: nested more than {MAX_YAML_DEPTH} levels deep")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_YAML_NODES:
                raise ConfigError(f"{where}: its anchors and aliases expand to more than {MAX_YAML_NODES} values; "
                                  "a run config needs far fewer (is it a YAML alias bomb?)")
        active.discard(key)
        sizes[key] = total
        return total

    size(root, 0)
    return sizes[id(root)]


def load_yaml(text: str, where: str) -> Any:
    """Parse YAML with the safe loader, refusing documents that expand past the bounds (module docstring)."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{where}: {len(text)} characters of YAML; a run config is under {MAX_YAML_BYTES} bytes")
    try:
        depth = 0  # the event parser keeps a stack, not recursion: deep nesting is refused before composing it
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise ConfigError(f"{where}: nested more than {MAX_YAML_DEPTH} levels deep")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _expanded_size(node, where)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        raise ConfigError(f"{where}: not valid YAML ({' '.join(str(error).split())})") from None


def check_config_file(file: Path) -> None:
    """A one-line ConfigError unless `file` is a regular file: missing, a folder, a FIFO (reading it would wait
    for a writer forever), a name the system refuses."""
    shown = printable(str(file))
    try:
        mode = file.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"{shown}: config file not found; pass the path of a YAML run config (see configs/)") \
            from None
    except OSError as error:
        raise ConfigError(f"{shown}: cannot be opened ({error.strerror}); pass the path of a YAML run config") \
            from None
    if stat.S_ISDIR(mode):
        raise ConfigError(f"{shown}: is a folder; pass the path of a YAML run config inside it")
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{shown}: is not a regular file (a FIFO or a device); pass the path of a YAML run config")
    if file.stat().st_size == 0:
        raise ConfigError(f"{shown}: the file is empty; a run config needs at least a model and data section "
                          "(see configs/)")


def read_yaml_file(path: str | Path) -> Any:
    """The YAML document in file `path` (`load_yaml`), with one-line errors naming the file."""
    file = Path(path)
    check_config_file(file)
    if file.stat().st_size > MAX_YAML_BYTES:
        raise ConfigError(f"{file}: {file.stat().st_size} bytes; a run config is under {MAX_YAML_BYTES} bytes")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{printable(str(file))}: not a text file (byte {error.start} is not UTF-8); pass a YAML run "
                          "config") from None
    except OSError as error:
        raise ConfigError(f"{file}: cannot be read ({error.strerror})") from None
    return load_yaml(text, printable(str(file)))


def _finite(value: float | None) -> bool:
    return value is None or math.isfinite(value)


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
        if (self.steps is not None and self.steps < 1) or (self.epochs is not None and not 0 < self.epochs < math.inf):
            raise ConfigError(f"stage {self.name!r}: steps / epochs must be positive and finite")
        for key, bad in (("batch_size", self.batch_size is not None and self.batch_size < 1),
                         ("grad_accum", self.grad_accum is not None and self.grad_accum < 1)):
            if bad:
                raise ConfigError(f"stage {self.name!r}: {key} must be >= 1")
        _check_data_numbers(self.overrides, f"stage {self.name!r}: overrides")


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
        numbers = {"lr": self.lr, "min_lr": self.min_lr, "warmup_ratio": self.warmup_ratio,
                   "warmup_start_lr": self.warmup_start_lr, "weight_decay": self.weight_decay, "eps": self.eps,
                   "grad_clip": self.grad_clip, "betas[0]": self.betas[0], "betas[1]": self.betas[1]}
        for key, value in numbers.items():
            if not _finite(value):
                raise ConfigError(f"TrainConfig: {key} must be a finite number, got {value}")
        checks = [
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.grad_accum >= 1, "grad_accum must be >= 1"),
            (self.lr > 0 and 0 <= self.min_lr <= self.lr, "need lr > 0 and 0 <= min_lr <= lr"),
            (self.warmup_start_lr >= 0, "warmup_start_lr must be >= 0"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.warmup_steps is None or self.warmup_steps >= 0, "warmup_steps must be >= 0"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (all(0 <= b < 1 for b in self.betas), f"betas must be in [0, 1), got {list(self.betas)}"),
            (self.eps > 0, f"eps must be > 0, got {self.eps}"),
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
        _check_data_numbers(self.data, "data")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-able dict (the run folder keeps a copy)."""
        return dataclasses.asdict(self)


#: numbers of the `data` section (and of stage overrides) that size every clip: key -> (minimum, integer)
DATA_NUMBERS: dict[str, tuple[float, bool]] = {"frames": (1, True), "size": (1, True), "fps": (0, False),
                                               "num_clips": (1, True), "num_crops": (1, True)}


def _check_data_numbers(section: dict[str, Any], where: str) -> None:
    """ConfigError naming the key when one of DATA_NUMBERS is not a finite number in its range (null is fine)."""
    for key, (low, integer) in DATA_NUMBERS.items():
        value = section.get(key)
        if value is None:
            continue
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (value == int(value) if integer else True) and (value >= low if integer else value > low)
        if not ok:
            need = f"a whole number >= {low:g}" if integer else f"a finite number > {low:g}"
            raise ConfigError(f"{where}.{key}: needs {need} (or null), got {value!r}")
    bounds = {"frames": check_frames, "size": check_size, "fps": check_fps}  # what one read may ask for
    for key, check in bounds.items():
        if section.get(key) is not None:
            try:
                check(int(section[key]) if key != "fps" else section[key], f"{where}.{key}")
            except SamplingError as error:
                raise ConfigError(str(error)) from None
    hflip = section.get("hflip")
    if hflip is not None and not (isinstance(hflip, (int, float)) and 0 <= hflip <= 1):
        raise ConfigError(f"{where}.hflip: needs a probability in [0, 1], got {hflip!r}")


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
        except (TypeError, ValueError, OverflowError):  # int(inf) overflows
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
        value = load_yaml(text, f"override {item!r}") if text.strip() else None
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
        loaded = read_yaml_file(file)
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{file}: the top level must be a mapping of TrainConfig keys")
        values = loaded or {}
    try:
        return config_from_dict(values, overrides)
    except ConfigError as error:
        raise ConfigError(f"{path or 'config'}: {error}") from None


def read_run_config(run_dir: str | Path) -> dict[str, Any] | None:
    """RUN/config.yaml as the run that wrote the folder's checkpoints saved it (None when absent or unreadable)."""
    try:
        loaded = read_yaml_file(Path(run_dir) / "config.yaml")
    except ConfigError:
        return None
    return loaded if isinstance(loaded, dict) else None


def model_changes(before: dict[str, Any] | None, now: dict[str, Any]) -> str:
    """'; model.config.embed_dim is 48 now, 32 when the checkpoints were written' for every model setting that
    differs between two run configs ('' when nothing is known or nothing differs)."""
    if not before:
        return ""

    def flat(tree: Any, prefix: str) -> dict[str, Any]:
        if not isinstance(tree, dict):
            return {prefix: tree}
        return {k: v for key, value in tree.items() for k, v in flat(value, f"{prefix}.{key}").items()}

    old, new = flat(before.get("model", {}), "model"), flat(now.get("model", {}), "model")
    changed = [f"{key} is {new.get(key)!r} now, {old.get(key)!r} when the checkpoints were written"
               for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    return "; " + ", ".join(changed) if changed else ""


def _plain(values: Any, budget: list[int] | None = None, depth: int = 0) -> Any:
    """Deep copy of YAML-like data (dicts, lists, scalars; dataclasses become dicts).

    At most MAX_YAML_NODES values and MAX_YAML_DEPTH levels: data parsed elsewhere (the command line reads the
    file itself) may share one list many times over, and copying it would expand an alias bomb.
    """
    budget = [MAX_YAML_NODES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(f"more than {MAX_YAML_NODES} values; a run config needs far fewer (is it a YAML alias "
                          "bomb?)")
    if depth > MAX_YAML_DEPTH:
        raise ConfigError(f"nested more than {MAX_YAML_DEPTH} levels deep (or a structure that contains itself)")
    if dataclasses.is_dataclass(values) and not isinstance(values, type):
        return _plain(dataclasses.asdict(values), budget, depth)
    if isinstance(values, dict):
        return {str(k): _plain(v, budget, depth + 1) for k, v in values.items()}
    if isinstance(values, (list, tuple)):
        return [_plain(v, budget, depth + 1) for v in values]
    return values


__all__ = ["MAX_YAML_BYTES", "MAX_YAML_DEPTH", "MAX_YAML_NODES", "Precision", "Stage", "TrainConfig",
           "config_from_dict", "load_config", "load_yaml", "parse_overrides", "read_yaml_file"]
