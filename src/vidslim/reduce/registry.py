"""The one table of reducers: each one's name, class, where it acts, the model families it fits, its presets and
its settable parameters. The command line (`--method`, `--set`), `vidslim bench`, reduction cards in checkpoints
and token counting all read it.

    build_reduction("rlt+tome", "clip-b16", family="clip", tau=0.05)      -> [RLT(tau=0.05), ToMe(r=10)]
    build_reduction("tempme", "clip-b16", **{"tempme.groups": (3, 2, 2)})  -> [TempMe(<clip-b16 preset>, groups=...)]
    build_reduction([{"rlt": {"tau": 0.1}}, {"tempme": "paper"}], "clip-b16")   # a reduction card
    build_reduction("dense")                                               -> []

Defaults live only in the reducers' constructors: a setting left out is the constructor's default, except that a
class with `PRESETS` (backbone name -> settings, "*" for any other; TempMe's paper settings, ToMe's like-for-like
r) starts a method string's part from the preset of the named model. Settable parameters are the constructor's
parameters: a setting no part of the combination takes is an error, never ignored ("key" goes to every part that
takes it, "name.key" to one part).
A "+" combination is ordered by where each part acts: selectors before the model (rlt, random), then reducers
between blocks (tome, tempme, tokenprune), then attention patterns (svitt), which must cut their blocks from the
final sequences of a layer. A model runs one selector.

Classes are named by import path and imported on first use, so the table lists reducers of any layer (SViTT's
`SparseAttention` lives with the attention kernels) without importing them, and reading a name from an untrusted
checkpoint can only ever build one of these classes. A program adds its own with `register_reducer`.

A new reducer is one file (its class) and one `ReducerEntry` below.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from vidslim.errors import ConfigError

Where = Literal["input", "blocks", "attention"]
#: where a reducer acts, in the order a combination lists them
WHERE: tuple[Where, ...] = ("input", "blocks", "attention")

#: how errors name each model family
FAMILY_NAMES = {"video_vit": "the video ViT (videomae-*)", "clip": "CLIP (clip-*)",
                "siglip": "SigLIP (siglip-*, siglip2-*)", "vjepa2": "V-JEPA 2 (vjepa2-*)", "vivit": "ViViT (vivit-*)",
                "xclip": "X-CLIP (xclip-*)"}


@dataclasses.dataclass(frozen=True)
class ReducerEntry:
    """A registered reducer (see the module docstring).

    name: the name cards store; path: "module:Class"; families: model families it applies to (None: every
    family); aliases: other names accepted, the first one the short name the command line lists; readback:
    constructor argument -> the attribute that holds its value, where the same-named attribute holds something
    else (read when writing a card).
    """

    name: str
    path: str
    summary: str
    families: frozenset[str] | None = None
    aliases: tuple[str, ...] = ()
    readback: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: what to say when a model of another family asks for it
    hint: str = ""

    def load(self) -> type:
        """The reducer class (imported on first use; a class a program registered is returned as it is)."""
        if self.name in _CLASSES:
            return _CLASSES[self.name]
        module, _, qualname = self.path.partition(":")
        return getattr(importlib.import_module(module), qualname)  # type: ignore[no-any-return]

    @property
    def where(self) -> Where:
        """"input" (a TokenSelector, before the model), "attention" (it hands blocks a pattern) or "blocks"."""
        from vidslim.tokens.selection import TokenSelector

        cls = self.load()
        if issubclass(cls, TokenSelector):
            return "input"
        return "attention" if callable(getattr(cls, "attention_pattern", None)) else "blocks"

    def parameters(self) -> dict[str, Any]:
        """Settable parameter -> its constructor default (inspect.Parameter.empty when required)."""
        return {
            name: p.default
            for name, p in inspect.signature(self.load()).parameters.items()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }

    def presets(self) -> Mapping[str, Mapping[str, Any]]:
        """Backbone name -> settings (the class's `PRESETS`; empty when it has none)."""
        return getattr(self.load(), "PRESETS", {})

    @property
    def method_name(self) -> str:
        """The short name the command line lists (`--method rlt+tokenprune+svitt`)."""
        return self.aliases[0] if self.aliases else self.name

    def fits(self, family: str | None) -> bool:
        return family is None or self.families is None or family in self.families


def _entry(name: str, path: str, summary: str, families: tuple[str, ...] | None = None, **extra: Any) -> ReducerEntry:
    return ReducerEntry(name, path, summary, None if families is None else frozenset(families), **extra)


#: every built-in family but X-CLIP, whose per-layer message tokens only ToMe, TempMe and per-frame RLT are wired for
_NOT_XCLIP = ("video_vit", "clip", "siglip", "vjepa2", "vivit")

_BUILT_IN = (
    _entry("rlt", "vidslim.tokenize.rlt:RLT",
           "RLT: drop tubelets that repeat the one before them (tau=0.1, random_keep=; needs real video); on CLIP, "
           "vidslim's per-frame RLT: patches that repeat the previous frame's are dropped, CLS kept",
           ("video_vit", "clip", "siglip", "vjepa2", "vivit", "xclip"), readback={"length_embed": "use_length_embed"}),
    _entry("rlt_budget", "vidslim.tokenize.rlt_budget:RLTBudget",
           "RLT with a fixed budget: every clip keeps exactly k tubelets (keep=0.5 or tokens=), the ones RLT's "
           "difference score ranks highest; static shapes, for export and compiled graphs (video ViT only)",
           ("video_vit",), readback={"length_embed": "use_length_embed"},
           hint="it keeps k tubelets per clip of a video model such as 'videomae-b16'"),
    _entry("random_mask", "vidslim.tokenize.rlt:RandomMask",
           "random masking: keep a random fraction of the tubelets (keep=0.5; tubelet models only)",
           ("video_vit", "vjepa2"),
           aliases=("random",), hint="it masks the tubelets of a video model such as 'videomae-b16'"),
    _entry("tome", "vidslim.reduce.tome:ToMe", "ToMe: r tokens merged per sequence after attention in every layer"),
    _entry("tempme", "vidslim.reduce.tempme:TempMe",
           "TempMe: ImgMe then ClipMe merging; presets: the paper's for clip-b32/b16, depth-scaled for SigLIP "
           "(per-frame towers: CLIP, SigLIP, X-CLIP)",
           ("clip", "siglip", "xclip"),
           hint="it merges per-frame sequences: use it with a CLIP, SigLIP or X-CLIP model, or vs.ToMe for the video "
                "ViT"),
    _entry("token_prune", "vidslim.reduce.svitt_prune:TokenPrune",
           "SViTT node sparsity: keep the most-attended tokens after some layers (layers=[3,6,9], keep=0.7)",
           _NOT_XCLIP, aliases=("tokenprune",),
           hint="X-CLIP's prompt context and message tokens are not wired for it: use ToMe or TempMe there"),
    _entry("sparse_attention", "vidslim.attention.svitt:SparseAttention",
           "SViTT edge sparsity: blocks of 56, 1 local + 3 random per query block, CLS global (block=, local=, "
           "random=, order=); the video ViT has no CLS, so no token is global there",
           _NOT_XCLIP, aliases=("svitt",),
           hint="X-CLIP adds message tokens to every attention, outside any block pattern: use ToMe or TempMe there"),
)

REDUCERS: dict[str, ReducerEntry] = {entry.name: entry for entry in _BUILT_IN}
# classes a program registered at run time (register_reducer), so they need no import path
_CLASSES: dict[str, type] = {}


def register_reducer(name: str, cls: type, readback: Mapping[str, str] | None = None,
                     families: Sequence[str] | None = None, summary: str = "") -> None:
    """Make a reducer class of your own buildable by name (cards, `--method`) and writable to cards."""
    if not name or not name.replace("_", "").isalnum():
        raise ConfigError(f"register_reducer: name {name!r} must be a word of letters, digits and underscores")
    REDUCERS[name] = ReducerEntry(name, f"{cls.__module__}:{cls.__qualname__}", summary or cls.__name__,
                                  None if families is None else frozenset(families), readback=dict(readback or {}))
    _CLASSES[name] = cls


def unregister_reducer(name: str) -> None:
    """Remove an entry `register_reducer` added."""
    if name in _CLASSES:
        del _CLASSES[name], REDUCERS[name]


def reducer_names() -> list[str]:
    """The registered names, sorted."""
    return sorted(REDUCERS)


def method_names(family: str | None = None) -> list[str]:
    """The short names of the reducers that fit `family` (all without one), sorted."""
    return sorted(e.method_name for e in REDUCERS.values() if e.fits(family))


def summaries() -> dict[str, str]:
    """short name -> one-line summary, with "dense" (no reduction) first."""
    return {"dense": "no reduction: every token through every layer",
            **{e.method_name: e.summary for e in sorted(REDUCERS.values(), key=lambda e: e.method_name)}}


def lookup(name: str, card: bool = False) -> ReducerEntry:
    """The entry of `name` (or of an alias); a ConfigError with close matches otherwise (naming the card names
    when `card`: a name read from a checkpoint or a run config)."""
    entry = REDUCERS.get(name)
    if entry is None:
        entry = next((e for e in REDUCERS.values() if name in e.aliases), None)
    if entry is None and card:
        raise ConfigError(f"unknown reducer {name!r} in a reduction list; known reducers: {', '.join(reducer_names())}")
    if entry is None:
        close = difflib.get_close_matches(name, ["dense", *method_names(), *REDUCERS], n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown method {name!r}{hint}; known methods: dense, {', '.join(method_names())}")
    return entry


def entry_for(reducer: object) -> ReducerEntry | None:
    """The entry whose class is exactly `type(reducer)` (None for an unregistered type)."""
    for entry in REDUCERS.values():
        try:
            if type(reducer) is entry.load():
                return entry
        except (ImportError, AttributeError):  # an entry whose module is missing cannot match
            continue
    return None


def check_applies(reducer: object, model: Any) -> None:
    """A ConfigError when a registered reducer does not apply to `model`'s family (called when attaching)."""
    entry = entry_for(reducer)
    family = getattr(model, "family", None)
    if entry is not None and not entry.fits(family):
        hint = f" ({entry.hint})" if entry.hint else ""
        raise ConfigError(
            f"{type(reducer).__name__} acts on {_families(entry)}, not on {FAMILY_NAMES.get(str(family), family)}"
            f"{hint}; methods that fit it: {', '.join(method_names(family))}"
        )


def _families(entry: ReducerEntry) -> str:
    return " or ".join(FAMILY_NAMES.get(f, f) for f in sorted(entry.families or ()))


# ------------------------------------------------------------------------------------------------ building
def _parts(what: str | Sequence[Any] | Mapping[str, Any] | None, where: str) -> list[tuple[str, Any]]:
    """(name, settings or preset or None) for each part of a method string or a card."""
    if what is None:
        return []
    if isinstance(what, str):
        names = [part.strip() for part in what.split("+")]
        if any(not n for n in names):
            raise ConfigError(f"{where}: empty part in method {what!r}; write names joined by '+', e.g. rlt+tome")
        return [(n, None) for n in names if n != "dense"]
    if isinstance(what, Mapping):
        what = [what]
    parts = []
    for i, item in enumerate(what):
        if isinstance(item, str):
            parts.append((item, None))
        elif isinstance(item, Mapping) and len(item) == 1:
            ((name, settings),) = item.items()
            parts.append((str(name), settings))
        else:
            raise ConfigError(f"{where}[{i}]: write each reducer as a name or a one-key mapping such as "
                              f"{{'rlt': {{'tau': 0.1}}}} or {{'tempme': 'paper'}}, got {item!r}")
    return parts


def _preset(entry: ReducerEntry, preset: str, model: str | None, where: str) -> dict[str, Any]:
    presets = entry.presets()
    backbone = model if preset == "paper" else preset
    if not presets:
        raise ConfigError(f"{where}: {entry.load().__name__} has no presets ({preset!r}); give its settings as a "
                          "mapping")
    if backbone is None:
        raise ConfigError(f"{where}: {{{entry.name!r}: 'paper'}} needs the model's name; write the backbone "
                          f"instead, e.g. {{{entry.name!r}: {sorted(presets)[0]!r}}}")
    if backbone not in presets:
        raise ConfigError(f"{where}: {entry.name} has no preset for {backbone!r}; presets: {sorted(presets)}")
    return dict(presets[backbone])


def _split_settings(settings: Mapping[str, Any], names: Sequence[str], where: str) -> list[dict[str, Any]]:
    """Route "key" to every part that takes it and "name.key" to that part; anything unrouted is an error."""
    entries = [lookup(n) for n in names]
    params = [e.parameters() for e in entries]
    routed: list[dict[str, Any]] = [{} for _ in names]
    for key, value in settings.items():
        target, _, param = key.rpartition(".")
        if target:
            hits = [i for i, e in enumerate(entries) if target in (e.name, *e.aliases)]
            if not hits:
                raise ConfigError(f"{where}: setting {key!r} names {target!r}, which is not in {'+'.join(names)}")
            if param not in params[hits[0]]:
                raise ConfigError(f"{where}: {entries[hits[0]].name} has no setting {param!r}; its settings: "
                                  f"{', '.join(params[hits[0]])}")
        else:
            hits = [i for i, p in enumerate(params) if key in p]
            if not hits:
                valid = sorted({f"{e.name}.{p}" for e, ps in zip(entries, params, strict=True) for p in ps})
                raise ConfigError(f"{where}: no part of {'+'.join(names) or 'dense'} takes a setting {key!r}; "
                                  f"settings: {', '.join(valid) or 'none'}")
        for i in hits:
            routed[i][param or key] = value
    return routed


def build_reduction(
    what: str | Sequence[Any] | Mapping[str, Any] | None,
    model: str | None = None,
    family: str | None = None,
    where: str = "reduction",
    fallback: Mapping[str, Any] | None = None,
    **settings: Any,
) -> list[object]:
    """Reducer objects from a method string ("rlt+tome", "dense") or a reduction card (see the module docstring).

    model: the backbone presets refer to; family: the model family, to refuse a part that does not fit it before
    any model is built; settings: "key" or "name.key" values (a string's parts only); fallback: values used
    only by the parts that take them and were not given them (the benchmarks' fixed seeds, say).
    """
    parts = _parts(what, where)
    from_string = isinstance(what, str)
    if from_string:
        order = {name: WHERE.index(lookup(name).where) for name, _ in parts}
        parts.sort(key=lambda part: order[part[0]])
    elif settings:
        raise ConfigError(f"{where}: key=value settings apply to a method string; write them in the card")
    names = [name for name, _ in parts]
    for name in names:
        lookup(name, card=not from_string)
    routed = _split_settings(settings, names, where) if settings else [{} for _ in names]
    reducers: list[object] = []
    for i, ((name, given), extra) in enumerate(zip(parts, routed, strict=True)):
        here = f"{where}[{i}]" if not from_string else f"{where} {name!r}"
        entry = lookup(name, card=not from_string)
        if not entry.fits(family):
            fits = f" {model!r}" if model else ""
            raise ConfigError(f"{here}: {name!r} acts on {_families(entry)}, not on{fits} "
                              f"({FAMILY_NAMES.get(str(family), family)}); drop {name!r}, or pick a method that "
                              f"fits{fits}: dense, {', '.join(method_names(family))}")
        cls, params = entry.load(), entry.parameters()
        if isinstance(given, str):
            values = _preset(entry, given, model, here)
        elif given is None:
            presets = entry.presets() if from_string else {}
            values = dict(presets.get(model or "", presets.get("*", {})))
        elif isinstance(given, Mapping):
            values = dict(given)
        else:
            raise ConfigError(f"{here}: the settings of {name} must be a mapping of constructor arguments, a preset "
                              f"name or null, got {given!r}")
        values.update(extra)
        unknown = sorted(set(values) - set(params))
        if unknown:
            raise ConfigError(f"{here}: unknown setting(s) {unknown} for {cls.__name__}; valid settings: "
                              f"{list(params)}")
        for key, value in (fallback or {}).items():
            if key in params and key not in values:
                values[key] = value
        try:
            reducers.append(cls(**values))
        except TypeError as error:
            raise ConfigError(f"{here}: {cls.__name__}({values}) failed: {error}") from None
    selectors = [name for name in names if lookup(name).where == "input"]
    if len(selectors) > 1:
        raise ConfigError(f"{where}: {' and '.join(selectors)} both act before the model and a model runs one; to "
                          "mask RLT's tokens at random as well use --method rlt --set random_keep=FRACTION")
    return reducers


__all__ = ["REDUCERS", "WHERE", "ReducerEntry", "build_reduction", "check_applies", "entry_for", "lookup",
           "method_names", "reducer_names", "register_reducer", "summaries", "unregister_reducer"]
