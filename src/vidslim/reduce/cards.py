"""Reduction cards: a model's reducers written down as plain data, to be built again by the registry.

A card is a JSON/YAML-able list with one single-key mapping per reducer, in the order the model runs them:

    [{"rlt": {"tau": 0.1, "length_embed": true, "random_keep": null, "pool": "mean", "seed": null}},
     {"tempme": {"r": 2, "merge_layers": [8, 9, 10], "groups": [2, 2, 3], "rc": 0.3, "ri": 0.1, ...}}]

`reduction_card(reducers)` writes it: each reducer's constructor arguments are read back from the reducer itself,
through `inspect.signature` of its class and the attributes of the same names (the registry's `readback` names the
attribute where the same-named one holds something else, e.g. RLT's `length_embed` is the learned table and the
flag is `use_length_embed`; a `seed` comes back from the reducer's `generator`), or from the reducer's own
`card()` method when it defines one. `save_model` stores the card in vidslim.json, and `load_model` builds the
same reducers from it with `vidslim.reduce.registry.build_reduction`, which also reads the short forms a run
config uses (`["rlt"]`, `[{"rlt": {"tau": 0.1}}]`, `[{"tempme": "paper"}]`, `[{"tempme": "clip-b16"}]`).

Safety: a card names a registered reducer, never a module or a class to import, so reading an untrusted
checkpoint cannot run code of its choosing.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.reduce.registry import entry_for, reducer_names

Card = list[dict[str, Any]]


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
                              f"register it with vidslim.reduce.registry.register_reducer(name, cls) to "
                              f"write it in a card (registered: {', '.join(reducer_names())})")
        card.append({entry.name: reducer_arguments(reducer, entry.readback)})
    return card


__all__ = ["Card", "reducer_arguments", "reduction_card"]
