"""README's family x method table says what the reducer registry allows: a "no" cell is a method the registry
refuses for that family (and `create_model` with it raises), any other cell one it accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import vidslim as vs
from vidslim.errors import ConfigError
from vidslim.models.registry import family_of, list_models
from vidslim.reduce.registry import REDUCERS

README = Path(__file__).resolve().parents[2] / "README.md"
#: README column -> registry name, and a small instance for the refusal check
COLUMNS = {"RLT": "rlt", "RLT, fixed budget": "rlt_budget", "random masking": "random_mask", "ToMe": "tome",
           "TempMe": "tempme", "token pruning": "token_prune", "block-sparse attention": "sparse_attention"}
INSTANCES = {"rlt": lambda: vs.RLT(), "rlt_budget": lambda: vs.RLTBudget(keep=0.5), "random_mask": vs.RandomMask,
             "tome": lambda: vs.ToMe(r=1), "tempme": lambda: vs.TempMe(r=1, merge_layers=(0,), groups=(2,)),
             "token_prune": lambda: vs.TokenPrune(layers=[0], keep=0.5), "sparse_attention": vs.SparseAttention}


def table() -> list[tuple[str, dict[str, str]]]:
    """(a named config of the row's family, {registry name: cell}) for every row of the table."""
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| family (named configs) |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        first = re.search(r"`([a-z0-9]+)-", cells[0])
        assert first, cells[0]
        name = next(n for n in list_models() if n.startswith(first.group(1) + "-"))
        rows.append((name, {COLUMNS[h]: c for h, c in zip(header[1:], cells[1:], strict=True)}))
    return rows


def test_the_table_has_every_family_and_every_built_in_method() -> None:
    rows = table()
    assert {family_of(name) for name, _ in rows} == {family_of(n) for n in list_models()}
    assert set(rows[0][1]) == set(REDUCERS)


@pytest.mark.parametrize(("name", "cells"), table(), ids=[family_of(n) for n, _ in table()])
def test_each_cell_says_what_the_registry_allows(name: str, cells: dict[str, str]) -> None:
    family = family_of(name)
    for method, cell in cells.items():
        assert REDUCERS[method].fits(family) == (cell != "no"), (family, method, cell)
    tiny = next(n for n in list_models() if family_of(n) == family and n.endswith("-tiny"))
    for method in (m for m, cell in cells.items() if cell == "no"):
        with pytest.raises(ConfigError, match="not on"):
            vs.create_model(tiny, reduction=[INSTANCES[method]()])
