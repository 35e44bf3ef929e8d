"""Watch the CPU kernel loader compile: the one spy the kernel tests share.

Tests import `from kernel_builds import count_builds` (tests/conftest.py puts tests/ on sys.path).
"""

from __future__ import annotations

import pytest

from vidslim.attention.cpu import build


def count_builds(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """From now on, the compiler command lines the loader runs (its `--version` queries left out)."""
    builds: list[list[str]] = []
    run = build._run_compiler

    def spy(command: list[str], timeout: float) -> object:
        if "-shared" in command:
            builds.append(command)
        return run(command, timeout)

    monkeypatch.setattr(build, "_run_compiler", spy)
    return builds
