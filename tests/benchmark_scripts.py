"""Load a script of benchmarks/ as a module, for the tests that check what it prints or decides. Tests import
`from benchmark_scripts import load_benchmark` (tests/conftest.py puts tests/ on sys.path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str, module_name: str | None = None) -> ModuleType:
    """benchmarks/`name`.py as a fresh module, registered in sys.modules under `module_name` (dataclasses look their
    module up by name) or "`name`_under_test"."""
    module_name = module_name or f"{name}_under_test"
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


__all__ = ["load_benchmark"]
