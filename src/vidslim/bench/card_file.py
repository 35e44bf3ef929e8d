"""A reduction card on disk: the reducers (`vidslim.reduce.cards` format) and what was measured when it was made.

    {"reduction": [{"rlt": {"tau": 0.07, ...}}], "model": "videomae-b16", "target": "speedup=2",
     "measured": {...}, "predicted": {...}, "does_not_promise": [...]}

`vidslim tune` writes one; `--card FILE` of `vidslim bench`, `embed`, `classify`, `eval` and `export` (and
`read_card`) read it back: `card_or_method` gives those commands the reducers to build in place of `--method`. A bare
list (the card a checkpoint stores) is accepted too. The reducers are rebuilt through the registry, so a card file
can only ever name registered reducers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vidslim.errors import ConfigError


def write_card(path: str | Path, reduction: list[dict[str, Any]], **meta: Any) -> Path:
    """Write the card as JSON (`reduction` first, then `meta`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"reduction": reduction, **meta}, indent=2) + "\n")
    return path


def read_card(path: str | Path) -> tuple[list[Any], dict[str, Any]]:
    """(the reduction list, everything else in the file); a one-line ConfigError when it is not a card."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"--card {path}: no such file; write one with `vidslim tune ... --out {path}`") from None
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"--card {path}: not a JSON reduction card ({error}); write one with `vidslim tune`") \
            from None
    if isinstance(data, list):
        return data, {}
    if isinstance(data, dict) and isinstance(data.get("reduction"), list):
        return data["reduction"], {k: v for k, v in data.items() if k != "reduction"}
    raise ConfigError(f"--card {path}: expected a list of reducers or an object with a 'reduction' list")


def card_or_method(card: str | Path | None, method: str | None, settings: Any = ()) -> list[Any] | str | None:
    """What a command builds its reducers from: the card's reduction list when `--card` is given, else `method`.
    A card with `--method` or `--set` is a one-line ConfigError (the card holds every setting)."""
    if card is None:
        return method
    if method is not None or settings:
        given = "--method" if method is not None else "--set"
        raise ConfigError(f"--card {card} holds the reduction and every setting: drop {given}, or drop --card")
    return read_card(card)[0]


__all__ = ["card_or_method", "read_card", "write_card"]
