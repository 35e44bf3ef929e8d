"""Reduction cards: a model's reducers written down as plain data, and built again from it.

A card is a JSON/YAML-able list with one single-key mapping per reducer, in the order the model runs them:

    [{"rlt": {"tau": 0.1, "length_embed": true, "random_keep": null, "pool": "mean", "seed": null}},
     {"tempme": {"r": 2, "merge_layers": [8, 9, 10], "groups": [2, 2, 3], "rc": 0.3, "ri": 0.1, ...}}]

`reduction_card(reducers)` writes it: each reducer's constructor arguments are read back from the reducer itself,
through `inspect.signature` of its class and the attributes of the same names (a few registered aliases where an
attribute holds something else, e.g. RLT's `length_embed` is the learned table and the flag is
`use_length_embed`; a `seed` comes back from the reducer's `generator`), or from the reducer's own `card()`
method when it defines one. `save_model` stores the card in vidslim.json, and `load_model` builds the same
reducers from it, so a fine-tuned checkpoint comes back as the model that was saved; their parameters (RLT's
length embedding, TempMe's temporal embeddings) are then loaded by name.

`build_reduction(card)` also reads the short forms a run config uses:

    ["rlt"]                                   a bare name: the defaults
    [{"rlt": {"tau": 0.1}}]                   some arguments, the rest default
    [{"tempme": "paper"}]                     a preset: TempMe.paper(<the model's name>)
    [{"tempme": "clip-b16"}]                  a preset for a named backbone: TempMe.paper("clip-b16")

Safety: only the types registered in `REDUCERS` (and those a program adds with `register_reducer`) can be built.
A card names a registered reducer, never a module or a class to import, so reading an untrusted checkpoint
cannot run code of its choosing.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from vidslim.errors import ConfigError

Card = list[dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class ReducerEntry:
    """A registered reducer type: its card name, where its class lives, and attribute aliases for read-back.

    aliases: constructor argument -> attribute holding its value, where the same-named attribute holds
    something else.
    """

    name: str
    module: str
    qualname: str
    aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def load(self) -> type:
        """The reducer class (imported from vidslim on first use, so the registry costs nothing)."""
        return getattr(importlib.import_module(self.module), self.qualname)  # type: ignore[no-any-return]


REDUCERS: dict[str, ReducerEntry] = {
    entry.name: entry
    for entry in (
        ReducerEntry("rlt", "vidslim.tokenize.rlt", "RLT", {"length_embed": "use_length_embed"}),
        ReducerEntry("random_mask", "vidslim.tokenize.rlt", "RandomMask"),
        ReducerEntry("tome", "vidslim.reduce.tome", "ToMe"),
        ReducerEntry("tempme", "vidslim.reduce.tempme", "TempMe"),
        ReducerEntry("token_prune", "vidslim.reduce.svitt_prune", "TokenPrune"),
        ReducerEntry("sparse_attention", "vidslim.attention.svitt", "SparseAttention"),
    )
}

# classes registered by a program at run time (register_reducer), on top of the built-in entries
_EXTRA_CLASSES: dict[str, type] = {}


def register_reducer(name: str, cls: type, aliases: Mapping[str, str] | None = None) -> None:
    """Make a reducer class of your own writable to and buildable from cards under `name`."""
    if not name or not name.replace("_", "").isalnum():
        raise ConfigError(f"register_reducer: name {name!r} must be a word of letters, digits and underscores")
    REDUCERS[name] = ReducerEntry(name, cls.__module__, cls.__qualname__, dict(aliases or {}))
    _EXTRA_CLASSES[name] = cls


def registered() -> list[str]:
    """The reducer names a card may use, sorted."""
    return sorted(REDUCERS)


def _class_of(name: str) -> type:
    entry = REDUCERS.get(name)
    if entry is None:
        raise ConfigError(f"unknown reducer {name!r} in a reduction list; known reducers: {', '.join(registered())}")
    return _EXTRA_CLASSES.get(name) or entry.load()


def entry_for(reducer: object) -> ReducerEntry | None:
    """The registry entry whose class is exactly `type(reducer)` (None for an unregistered type)."""
    for name, entry in REDUCERS.items():
        try:
            if type(reducer) is _class_of(name):
                return entry
        except (ImportError, AttributeError):  # an entry whose module is missing cannot match
            continue
    return None


# ------------------------------------------------------------------------------------------------ writing
def _plain(value: Any, where: str) -> Any:
    """`value` as JSON data: tuples and lists become lists, sets sorted lists; anything else is an error."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v, where) for v in value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, where) for k, v in value.items()}
    raise ConfigError(f"{where} is a {type(value).__name__}, not plain data; give the reducer a card() method "
                      "that returns its constructor arguments")


def _read_back(reducer: object, parameter: str, aliases: Mapping[str, str]) -> Any:
    """The value of constructor argument `parameter`, read from the reducer's attributes."""
    attribute = aliases.get(parameter, parameter)
    missing = object()
    value = getattr(reducer, attribute, missing)
    if parameter == "seed" and (value is missing or value is None):
        generator = getattr(reducer, "generator", None) or getattr(reducer, "_generator", None)
        if isinstance(generator, torch.Generator):
            return generator.initial_seed()
        if value is missing and hasattr(reducer, "generator"):
            return None  # no generator: the reducer draws from the global one (seed=None)
    if value is missing or isinstance(value, (Tensor, nn.Module)):
        raise ConfigError(f"{type(reducer).__name__}: cannot read its constructor argument {parameter!r} back (no "
                          f"attribute of that name holding the value); give the class a card() method")
    return value


def reducer_arguments(reducer: object, aliases: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The constructor arguments that build `reducer` again: its `card()`, or read back by name."""
    own = getattr(reducer, "card", None)
    name = type(reducer).__name__
    if callable(own):
        values = own()
        if not isinstance(values, Mapping):
            raise ConfigError(f"{name}.card() must return a mapping of constructor arguments, got {type(values)}")
        return {str(k): _plain(v, f"{name}.card()[{k!r}]") for k, v in values.items()}
    arguments = {}
    for parameter in inspect.signature(type(reducer)).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        value = _read_back(reducer, parameter.name, aliases or {})
        arguments[parameter.name] = _plain(value, f"{name}.{parameter.name}")
    return arguments


def reduction_card(reducers: Sequence[object] | None) -> Card:
    """The card of a reducer list (see the module docstring); an unregistered type is a ConfigError."""
    card: Card = []
    for reducer in reducers or ():
        entry = entry_for(reducer)
        if entry is None:
            raise ConfigError(f"{type(reducer).__module__}.{type(reducer).__qualname__} is not a registered reducer; "
                              f"register it with vidslim.models.reduction_card.register_reducer(name, cls) to "
                              f"write it in a card (registered: {', '.join(registered())})")
        card.append({entry.name: reducer_arguments(reducer, entry.aliases)})
    return card


# ------------------------------------------------------------------------------------------------ building
def _split_entry(entry: Any, where: str) -> tuple[str, Any]:
    """(name, settings) of one card entry: "name", {"name": settings}."""
    if isinstance(entry, str):
        return entry, None
    if isinstance(entry, Mapping) and len(entry) == 1:
        ((name, settings),) = entry.items()
        return str(name), settings
    raise ConfigError(f"{where}: write each reducer as a name or a one-key mapping such as {{'rlt': {{'tau': 0.1}}}} "
                      f"or {{'tempme': 'paper'}}, got {entry!r}")


def _check_arguments(cls: type, settings: Mapping[str, Any], where: str) -> None:
    parameters = inspect.signature(cls).parameters
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(set(settings) - set(parameters))
    if unknown:
        valid = [n for n, p in parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        raise ConfigError(f"{where}: unknown setting(s) {unknown} for {cls.__name__}; valid settings: {valid}")


def _preset(cls: type, name: str, preset: str, model_name: str | None, where: str) -> object:
    """A reducer from a named preset: cls.paper(backbone), "paper" meaning the model's own name."""
    paper: Callable[..., object] | None = getattr(cls, "paper", None)
    if not callable(paper):
        raise ConfigError(f"{where}: {cls.__name__} has no presets ({preset!r}); give its settings as a mapping")
    backbone = model_name if preset == "paper" else preset
    if backbone is None:
        raise ConfigError(f"{where}: {{{name!r}: 'paper'}} needs the model's name; write the backbone instead, "
                          f"e.g. {{{name!r}: 'clip-b32'}}")
    return paper(backbone)


def build_reduction(
    card: Sequence[Any] | None, model_name: str | None = None, where: str = "reduction"
) -> list[object]:
    """Reducer objects from a card or a config's reduction list (see the module docstring).

    model_name: the backbone a "paper" preset refers to (the run config's model name).
    """
    if card is None:
        return []
    if isinstance(card, (str, Mapping)):
        card = [card]
    reducers: list[object] = []
    for i, entry in enumerate(card):
        here = f"{where}[{i}]"
        name, settings = _split_entry(entry, here)
        cls = _class_of(name)
        if isinstance(settings, str):
            reducers.append(_preset(cls, name, settings, model_name, here))
            continue
        if settings is None:
            settings = {}
        if not isinstance(settings, Mapping):
            raise ConfigError(f"{here}: the settings of {name} must be a mapping of constructor arguments, a preset "
                              f"name or null, got {settings!r}")
        _check_arguments(cls, settings, here)
        try:
            reducers.append(cls(**dict(settings)))
        except TypeError as error:
            raise ConfigError(f"{here}: {cls.__name__}({settings}) failed: {error}") from None
    return reducers


__all__ = ["REDUCERS", "Card", "ReducerEntry", "build_reduction", "entry_for", "reducer_arguments", "reduction_card",
           "register_reducer", "registered"]
