"""`--set KEY=VALUE` for benchmarks: a model config field or a reducer setting, each checked and typed.

    config, options = parse_settings(["tempme.groups=2,2,2", "tau=0.05", "num_frames=8"], source)
    # -> {"num_frames": 8}, {"tempme.groups": (2, 2, 2), "tau": 0.05}

A key is a reducer setting when a registered reducer takes it ("tau", "keep") or it names one ("tempme.groups"),
else a config field of the model; anything else is a one-line error listing both. A value is read as JSON
(numbers, true/false, lists), a comma list becomes a tuple, and it is then checked against the type of the
setting's default (a float setting refuses "abc"; a tuple setting takes "2,2,2"), so a typo fails before any model
is built rather than deep inside a constructor.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable
from typing import Any

from vidslim.errors import ConfigError


def read_value(text: str) -> Any:
    """'0.1' -> 0.1, 'true' -> True, '[2,2]' or '2,2' -> (2, 2), 'mean' -> 'mean'."""
    low = text.strip().lower()
    if low in ("true", "false", "null", "none"):
        return {"true": True, "false": False}.get(low)
    if "," in text and not text.strip().startswith("["):
        return tuple(read_value(part) for part in text.split(","))
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text.strip()
    return tuple(value) if isinstance(value, list) else value


def check_value(key: str, value: Any, default: Any) -> Any:
    """`value` converted to the kind of `default` (int/float/bool/sequence), or a ConfigError naming the key."""
    if default is inspect.Parameter.empty or default is None or value is None:
        return value
    kind = type(default)
    try:
        if kind is bool:
            if not isinstance(value, bool):
                raise ValueError
            return value
        if kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError
            if kind is int and float(value) != int(value):
                raise ValueError
            return kind(value)
        if isinstance(default, (tuple, list)):
            items = value if isinstance(value, (tuple, list)) else (value,)
            inner = type(default[0]) if default else None
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items)
            if inner in (int, float) and not numbers:
                raise ValueError
            return tuple(items)
    except ValueError:
        shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
        what = "a comma list like " + ",".join(map(str, default)) if isinstance(default, (tuple, list)) else (
            f"a{'n integer' if kind is int else ' number' if kind is float else ' true/false'}")
        raise ConfigError(f"--set {key}={shown}: {key.rpartition('.')[2]} takes {what} (default {default!r})") from None
    return value


def reducer_defaults() -> dict[str, dict[str, Any]]:
    """Reducer name and aliases -> its settable parameters and their defaults."""
    from vidslim.reduce.registry import REDUCERS

    out: dict[str, dict[str, Any]] = {}
    for entry in REDUCERS.values():
        params = entry.parameters()
        for name in (entry.name, *entry.aliases):
            out[name] = params
    return out


def parse_settings(items: Iterable[str], fields: Iterable[str], model: str = "the model") -> tuple[dict, dict]:
    """KEY=VALUE strings -> (config overrides, reducer settings), each checked (see the module docstring)."""
    fields = set(fields)
    reducers = reducer_defaults()
    settable: dict[str, list[Any]] = {}
    for params in reducers.values():
        for p, d in params.items():
            settable.setdefault(p, []).append(d)
    config: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: write KEY=VALUE, e.g. --set tau=0.05 or --set tempme.groups=2,2,2")
        value = read_value(text)
        target, _, param = key.rpartition(".")
        if target:
            if target not in reducers:
                raise ConfigError(f"--set {key}: no reducer is called {target!r}; reducers: "
                                  f"{', '.join(sorted(reducers))}")
            if param not in reducers[target]:
                raise ConfigError(f"--set {key}: {target} has no setting {param!r}; its settings: "
                                  f"{', '.join(reducers[target])}")
            options[key] = check_value(key, value, reducers[target][param])
        elif key in fields:
            config[key] = value
        elif key in settable:
            defaults = {type(d) for d in settable[key] if d is not inspect.Parameter.empty and d is not None}
            options[key] = check_value(key, value, settable[key][0]) if len(defaults) == 1 else value
        else:
            raise ConfigError(f"--set {key}=...: {key!r} is neither a method setting ({', '.join(sorted(settable))}) "
                              f"nor a config field of {model} ({', '.join(sorted(fields))})")
    return config, options


__all__ = ["check_value", "parse_settings", "read_value"]
