"""Renaming state dicts between checkpoint formats: regex rename rules, and joining or splitting projections.

Every converter (`convert_hf`, `convert_hf_out`, `convert_siglip`, `convert_xclip`, `convert_vjepa2`,
`convert_vivit`) is a table of rename rules plus the projections transformers stores apart (q, k and v, or k and
v) where vidslim keeps one matrix. A rule is (regex, replacement), applied in order with `re.sub`. Where a table
only maps literal name pieces, it is written once as (transformers piece, vidslim piece) pairs and `rules` makes
the regexes for either direction, so the way back is the exact mirror of the way in.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

Rule = tuple[str, str]


def rename(key: str, rules: list[Rule]) -> str:
    """`key` after every rule in order."""
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


def _piece(piece: str) -> tuple[str, str]:
    """A literal name piece with an optional leading `^` / trailing `$` -> (its regex, its literal text)."""
    head, tail = piece.startswith("^"), piece.endswith("$")
    text = piece[int(head) : len(piece) - int(tail)]
    return ("^" if head else "") + re.escape(text) + ("$" if tail else ""), text


def rules(pairs: list[tuple[str, str]], back: bool = False) -> list[Rule]:
    """Rename rules from (transformers piece, vidslim piece) pairs: transformers -> vidslim, or the reverse."""
    return [(_piece(ours if back else theirs)[0], _piece(theirs if back else ours)[1]) for theirs, ours in pairs]


class Fuser:
    """Collects separate projections (`parts`, e.g. q, k, v) under the name of the matrix they make, and
    concatenates each complete group along rows in `parts` order. An incomplete group keeps its original names,
    so strict loading reports them as they were."""

    def __init__(self, parts: tuple[str, ...]) -> None:
        self.parts = parts
        self.groups: dict[str, dict[str, tuple[str, Tensor]]] = {}

    def add(self, fused: str, part: str, key: str, value: Tensor) -> None:
        """`value` (stored under `key`) is the `part` rows of the matrix `fused`."""
        self.groups.setdefault(fused, {})[part] = (key, value)

    def into(self, out: dict[str, Tensor]) -> dict[str, Tensor]:
        """Write the fused matrices (or the incomplete groups as they were) into `out`, and return it."""
        for fused, group in self.groups.items():
            if all(p in group for p in self.parts):
                out[fused] = torch.cat([group[p][1] for p in self.parts], dim=0)
            else:
                out.update(dict(group.values()))
        return out


def split_fused(key: str, value: Tensor, fused: str, names: tuple[str, ...], template: str,
                out: dict[str, Tensor], copy: bool = False) -> bool:
    """When `key` ends with `fused`: split `value` into len(names) equal row blocks stored under
    `template.format(prefix, name)` (prefix: `key` without `fused`) and return True. `copy` gives each block
    its own storage (else it is a view of `value`)."""
    if not key.endswith(fused):
        return False
    prefix = key[: -len(fused)]
    for name, part in zip(names, value.chunk(len(names), dim=0), strict=True):
        out[template.format(prefix, name)] = part.clone() if copy else part.contiguous()
    return True


__all__ = ["Fuser", "Rule", "rename", "rules", "split_fused"]
