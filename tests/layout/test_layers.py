"""Imports flow one way: each layer of DESIGN.md may use the layers above it, never those below (every import
statement counts, including those inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import vidslim

#: DESIGN.md's layers, top first; `errors` and `_lazy` sit above them all
LAYERS = ("io", "tokens", "tokenize", "reduce", "attention", "models", "export", "data", "tasks", "train", "jobs",
          "scale", "bench", "viz", "cli")
ROOT = Path(vidslim.__file__).parent


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "vidslim" or len(parts) < 2 or parts[1] not in LAYERS:
        return None
    return LAYERS.index(parts[1])


def upward_imports() -> list[str]:
    """'file: imports module' for every import of a layer below the importing file's own."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        own = _layer("vidslim." + ".".join(path.relative_to(ROOT).with_suffix("").parts))
        if own is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                theirs = _layer(name)
                if theirs is not None and theirs > own:
                    found.append(f"{path.relative_to(ROOT)}: imports {name}")
    return found


def test_no_module_imports_a_layer_below_its_own() -> None:
    assert upward_imports() == []
