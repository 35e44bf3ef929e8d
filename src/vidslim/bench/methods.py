"""Reduction methods by name, for `vidslim bench` and anything else that picks a method from a string.

    build_reduction("tempme", "clip-b16")              -> [TempMe.paper("clip-b16")]
    build_reduction("tome", "clip-b32", r=4)           -> [ToMe(r=4)]
    build_reduction("rlt+tokenprune", "videomae-b16")  -> [RLT(tau=0.1), TokenPrune(layers=(3, 6, 9), keep=0.7)]
    build_reduction("tokenprune+svitt", "videomae-b16", **{"tokenprune.keep": 0.6})
    build_reduction("dense", "videomae-b16")           -> []

A method name joined with "+" ("rlt+tome") builds each part and concatenates the reducer lists, ordered by
where each acts (stable otherwise): tokenizers before the model (rlt, random), then reducers inside it (tome,
tempme, tokenprune), then attention patterns (svitt), since SparseAttention must cut its blocks from the final
sequences of a layer (after TempMe's ClipMe regroups them). So "svitt+tempme" is "tempme+svitt".

A builder takes the model name and keyword options and returns the reducer objects for `reduction=[...]`. It
reads the options it declares (`options=` of `register_method`: `r` for ToMe/TempMe, `tau` for RLT, `keep` for
random masking and TokenPrune, ...) and ignores the others; "method.key" applies to that method only (e.g.
`random.keep=0.3` next to `tokenprune.keep=0.7`) and wins over a plain "key". A method registered with
`families` raises a ConfigError naming the fix when the model belongs to another family (TempMe or random masking
on the video ViT / CLIP), before any model is built. "rlt" fits both: on CLIP it is vidslim's per-frame extension
(`vidslim.tokenize.frame_rlt`), so `--model clip-b16 --method rlt+tempme` runs.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable
from typing import Any

from vidslim.errors import ConfigError

MethodBuilder = Callable[..., list[object]]

#: where a method acts, in the order its reducers are listed in a combination
STAGES = ("tokenize", "reduce", "attention")

#: ToMe's default r per model when none is given: on CLIP, TempMe's ImgMe r for the same backbone (a like-for-like
#: row); on the video ViT-B (1568 tokens at 16 frames), 100 per layer, which leaves 368 tokens after the 12th and
#: about 0.65 of the dense FLOPs, near TokenPrune's default (ToMe's paper merges r=65 per layer in a 24-layer ViT-L
#: on the same token count); elsewhere 8
TOME_DEFAULT_R = {"clip-b32": 2, "clip-b16": 10, "videomae-b16": 100}

#: model family (vidslim.models.registry.FAMILIES) -> what to tell users about it in errors
FAMILY_EXAMPLES = {"video_vit": "the video ViT (videomae-*)", "clip": "CLIP (clip-*)"}


@dataclasses.dataclass(frozen=True)
class Method:
    """A registered method: its builder, a one-line description, where it acts, the model families it fits
    (None: any) and the keyword options its builder reads."""

    builder: MethodBuilder
    description: str = ""
    stage: str = "reduce"
    families: frozenset[str] | None = None
    options: tuple[str, ...] = ()


_METHODS: dict[str, Method] = {}


def register_method(
    name: str,
    builder: MethodBuilder,
    description: str = "",
    stage: str = "reduce",
    families: Iterable[str] | None = None,
    options: Iterable[str] = (),
) -> None:
    """Make `name` available to `build_reduction` (and `vidslim bench --method`). Replaces an earlier entry.

    stage: "tokenize" (before the model), "reduce" (between blocks) or "attention" (an attention pattern);
    families: the model families it fits ("video_vit", "clip"; None: all); options: keyword options it reads.
    """
    if not name or "+" in name or "." in name:
        raise ValueError(f"method name {name!r} must be non-empty and must not contain '+' or '.'")
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r} must be one of {STAGES}")
    fams = None if families is None else frozenset(families)
    _METHODS[name] = Method(builder, description, stage, fams, tuple(options))


def list_methods() -> dict[str, str]:
    """name -> one-line description, sorted by name."""
    return {name: entry.description for name, entry in sorted(_METHODS.items())}


def method_options() -> set[str]:
    """Every option name some registered method reads (for routing `--set KEY=VALUE` between model and method)."""
    return {option for entry in _METHODS.values() for option in entry.options}


def model_family(model: str) -> str | None:
    """The family of a named model ("video_vit", "clip"), or None when the name is not a registered model."""
    from vidslim.models.registry import FAMILIES, get_config, list_models

    if model not in list_models():
        return None
    config = get_config(model)
    return next((family for family, (_, cls) in FAMILIES.items() if isinstance(config, cls)), None)


def _lookup(part: str) -> Method:
    entry = _METHODS.get(part)
    if entry is None:
        close = difflib.get_close_matches(part, list(_METHODS), n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown method {part!r}{hint}; known methods: {', '.join(sorted(_METHODS))}")
    return entry


def _fitting(family: str) -> list[str]:
    return sorted(n for n, m in _METHODS.items() if m.families is None or family in m.families)


def build_reduction(method: str, model: str, **options: Any) -> list[object]:
    """The reducers of `method` ("a" or "a+b+...") for the named model, in stage order (see the module doc).

    Raises ConfigError for an unknown method, a method that does not fit the model's family, or two
    tokenizers (a model runs one before-the-model reducer).
    """
    parts = [part.strip() for part in method.split("+")]
    entries = [(part, _lookup(part)) for part in parts]
    family = model_family(model)
    for part, entry in entries:
        if family is not None and entry.families is not None and family not in entry.families:
            fits = " or ".join(FAMILY_EXAMPLES.get(f, f) for f in sorted(entry.families))
            kind = FAMILY_EXAMPLES.get(family, family)
            raise ConfigError(
                f"--method {method!r}: {part!r} acts on {fits}, not on {model!r} ({kind});"
                f" drop {part!r}, or pick a method that fits {model!r}: {', '.join(_fitting(family))}"
            )
    tokenizers = [part for part, entry in entries if entry.stage == "tokenize"]
    if len(tokenizers) > 1:
        raise ConfigError(
            f"--method {method!r}: {' and '.join(tokenizers)} are both tokenizers and a model runs one; to mask RLT's "
            "tokens at random as well use --method rlt --set random_keep=FRACTION"
        )
    reducers: list[object] = []
    for part, entry in sorted(entries, key=lambda item: STAGES.index(item[1].stage)):
        plain = {k: v for k, v in options.items() if "." not in k}
        scoped = {k.split(".", 1)[1]: v for k, v in options.items() if k.startswith(part + ".")}
        reducers.extend(entry.builder(model, **{**plain, **scoped}))
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


def _rlt(model: str, tau: float = 0.1, random_keep: float | None = None, **options: Any) -> list[object]:
    from vidslim.tokenize.rlt import RLT

    return [RLT(tau=float(tau), random_keep=random_keep, seed=options.get("seed", 0))]


def _random(model: str, keep: float = 0.5, **options: Any) -> list[object]:
    from vidslim.tokenize.rlt import RandomMask

    return [RandomMask(keep=float(keep), seed=options.get("seed", 0))]


def _tokenprune(
    model: str, layers: Iterable[int] = (3, 6, 9), keep: float = 0.7, score: str = "auto", **options: Any
) -> list[object]:
    from vidslim.reduce.svitt_prune import TokenPrune

    layers = (int(layers),) if isinstance(layers, int) else tuple(int(i) for i in layers)
    return [TokenPrune(layers=layers, keep=float(keep), score=score, seed=options.get("seed", 0))]


def _svitt(
    model: str, block: int = 56, local: int = 1, random: int = 3, order: str = "raster", **options: Any
) -> list[object]:
    from vidslim.attention.svitt import SparseAttention

    return [
        SparseAttention(
            block=int(block), local=int(local), random=int(random), order=order, seed=options.get("seed", 0)
        )
    ]


register_method("dense", _dense, "no reduction: every token through every layer")
register_method(
    "tome", _tome, "ToMe: r tokens merged per sequence after attention in every layer (--r)", options=("r",)
)
register_method(
    "tempme",
    _tempme,
    "TempMe: ImgMe then ClipMe merging, the paper's settings for clip-b32/b16 (CLIP only)",
    families=("clip",),
    options=("r",),
)
register_method(
    "rlt",
    _rlt,
    "RLT: drop tubelets that repeat the one before them (--set tau=0.1, random_keep=; needs real video: --video); "
    "on CLIP, vidslim's per-frame RLT: patches that repeat the previous frame's are dropped, CLS kept",
    stage="tokenize",
    families=("video_vit", "clip"),
    options=("tau", "random_keep", "seed"),
)
register_method(
    "random",
    _random,
    "random masking: keep a random fraction of the tubelets (--set keep=0.5; video ViT only)",
    stage="tokenize",
    families=("video_vit",),
    options=("keep", "seed"),
)
register_method(
    "tokenprune",
    _tokenprune,
    "SViTT node sparsity: keep the most-attended tokens after layers 3, 6, 9 (--set keep=0.7, layers=[3,6,9])",
    options=("layers", "keep", "score", "seed"),
)
register_method(
    "svitt",
    _svitt,
    "SViTT edge sparsity: blocks of 56, 1 local + 3 random per query block, CLS global (--set block=, local=, "
    "random=, order=); the video ViT has no CLS, so no token is global there",
    stage="attention",
    options=("block", "local", "random", "order", "seed"),
)
