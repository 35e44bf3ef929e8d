"""Lazy package exports: a package names its public objects and the modules that define them, and each module is
imported only when one of its names is first used. This keeps `import vidslim` (and `vidslim info`) light."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of `package` for `exports` (public name -> defining module)."""

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

    return __getattr__, __dir__
