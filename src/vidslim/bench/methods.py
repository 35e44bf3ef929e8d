"""Reduction methods by name, for `vidslim bench` and anything else that picks a method from a string.

    build_reduction("tempme", "clip-b16")              -> [TempMe.paper("clip-b16")]
    build_reduction("tome", "clip-b32", r=4)           -> [ToMe(r=4)]
    build_reduction("dense", "videomae-b16")           -> []
    register_method("rlt", lambda model, **opt: [RLT(tau=opt.get("tau", 0.1))], "run-length tokenization")

A method name joined with "+" ("rlt+tome") builds each part and concatenates the reducer lists in that order.
A builder takes the model name and keyword options (those it does not know it ignores: `r` for ToMe/TempMe,
`tau` for RLT, ...) and returns the reducer objects for `reduction=[...]`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from vidslim.errors import ConfigError

MethodBuilder = Callable[..., list[object]]

_METHODS: dict[str, tuple[MethodBuilder, str]] = {}

#: ToMe's default r per model when none is given: TempMe's ImgMe r for the same backbone (a like-for-like row)
TOME_DEFAULT_R = {"clip-b32": 2, "clip-b16": 10}


def register_method(name: str, builder: MethodBuilder, description: str = "") -> None:
    """Make `name` available to `build_reduction` (and `vidslim bench --method`). Replaces an earlier entry."""
    if not name or "+" in name:
        raise ValueError(f"method name {name!r} must be non-empty and must not contain '+'")
    _METHODS[name] = (builder, description)


def list_methods() -> dict[str, str]:
    """name -> one-line description, sorted by name."""
    return {name: entry[1] for name, entry in sorted(_METHODS.items())}


def build_reduction(method: str, model: str, **options: Any) -> list[object]:
    """The reducers of `method` ("a" or "a+b+...") for the named model."""
    reducers: list[object] = []
    for part in method.split("+"):
        entry = _METHODS.get(part.strip())
        if entry is None:
            close = difflib.get_close_matches(part, list(_METHODS), n=2)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            raise ConfigError(f"unknown method {part!r}{hint}; known methods: {', '.join(sorted(_METHODS))}")
        reducers.extend(entry[0](model, **options))
    return reducers


def _dense(model: str, **options: Any) -> list[object]:
    return []


def _tome(model: str, r: int | None = None, **options: Any) -> list[object]:
    from vidslim.reduce.tome import ToMe

    return [ToMe(r=TOME_DEFAULT_R.get(model, 8) if r is None else r)]


def _tempme(model: str, r: int | None = None, **options: Any) -> list[object]:
    from vidslim.reduce.tempme import PAPER, TempMe

    settings = dict(PAPER.get(model, {}))
    if r is not None:
        settings["r"] = r
    return [TempMe(**settings)]


register_method("dense", _dense, "no reduction: every token through every layer")
register_method("tome", _tome, "ToMe: r tokens merged per sequence after attention in every layer (--r)")
register_method("tempme", _tempme, "TempMe: ImgMe then ClipMe merging, the paper's settings for clip-b32/b16")
