"""The quick subset of benchmarks/fault_sweep.py's bad-input corpus: every case one line, exit 2, no traceback.

The cases are the script's own (`cases()` marks the quick ones); the full sweep is `python benchmarks/fault_sweep.py`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fault_sweep.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fault_sweep", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fault_sweep"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


sweep = _load()


def test_the_quick_cases_cover_every_command_and_kind_of_input() -> None:
    quick = [c for c in sweep.cases(Path("corpus")) if c.quick]
    commands = {c.argv[0] for c in quick}
    assert {"info", "tokens", "train", "eval", "data", "demo", "classify", "search", "export", "tune"} <= commands
    assert {c.stdout for c in quick} == {"pipe", "closed", "full"}
    assert len(quick) < len(sweep.cases(Path("corpus"))) / 4  # a subset: the full sweep is the script's


def test_quick_bad_inputs_are_one_line_in_process(tmp_path: Path) -> None:
    results = sweep.sweep(tmp_path, lambda c: c.quick and sweep.in_process(c), runner=sweep.run_in_process)
    assert len(results) >= 10
    failures = [f"{case.name}: {failure}" for case, failure in results if failure is not None]
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_quick_output_failures_in_a_subprocess(tmp_path: Path) -> None:
    """A closed pipe and a full disk on standard output need a real process (and its exit)."""
    results = sweep.sweep(tmp_path, lambda c: c.quick and not sweep.in_process(c))
    assert {case.stdout for case, _ in results} == {"closed", "full"}
    failures = [f"{case.name}: {failure}" for case, failure in results if failure is not None]
    assert not failures, "\n".join(failures)
