"""Lazy package exports: each module is imported only when one of its names is first used, which keeps
`import vidslim` (and `vidslim info`) light.

A package lists its public names once, as the imports of an `if TYPE_CHECKING:` block in its `__init__.py`
(`from vidslim.io.video import read_video as read_video`). IDEs and type checkers read those imports, so they
offer `vs.load_model(...).encode_video`; at run time the block does not run, and `lazy_exports` reads the same
imports from the file to build the package's `__getattr__`, `__dir__` and `__all__`: one table, no copy to drift.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def exports_of(init_file: str | Path) -> dict[str, str]:
    """public name -> defining module, from the `from M import N as N` lines under `if TYPE_CHECKING:`."""
    tree = ast.parse(Path(init_file).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return {alias.asname or alias.name: stmt.module
                    for stmt in node.body if isinstance(stmt, ast.ImportFrom) and stmt.module
                    for alias in stmt.names}
    raise ImportError(f"{init_file} has no `if TYPE_CHECKING:` block of public names")


def lazy_exports(package: str) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """The `__getattr__`, `__dir__` and `__all__` of `package`, from its `if TYPE_CHECKING:` imports."""
    exports = exports_of(sys.modules[package].__file__ or "")

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    # a name defined in a submodule of the same name (tokens.patchify.patchify) is bound now: importing the
    # submodule later would set the package attribute to the module and shadow the lazy lookup
    for name, module in exports.items():
        if module == f"{package}.{name}":
            setattr(sys.modules[package], name, getattr(importlib.import_module(module), name))

    return __getattr__, __dir__, sorted(exports)
