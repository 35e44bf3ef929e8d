"""The quick subset of benchmarks/fault_sweep.py's bad-input corpus: every case one line, exit 2, no traceback.

The cases are the script's own (`cases()` marks the quick ones); the full sweep is `python benchmarks/fault_sweep.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark_scripts import load_benchmark

sweep = load_benchmark("fault_sweep", "fault_sweep")


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
