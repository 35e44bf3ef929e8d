"""benchmarks/overhead_profile.py keeps what it measured: each model x batch is printed and saved as it finishes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from benchmark_scripts import load_benchmark


def load_script() -> ModuleType:
    return load_benchmark("overhead_profile")


@pytest.mark.slow  # a real (tiny) run of the script: a few seconds
def test_a_run_stopped_after_its_first_batch_keeps_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    script = load_script()
    measure = script.run_batch
    finished: list[int] = []

    def first_batch_only(suite: Any, batch: int, rounds: int) -> list[dict[str, Any]]:
        if finished:
            raise KeyboardInterrupt  # the run is stopped while the second batch is measured
        finished.append(batch)
        return measure(suite, batch, rounds)

    monkeypatch.setattr(script, "run_batch", first_batch_only)
    out = tmp_path / "clip.json"
    argv = ["overhead_profile.py", "--models", "clip-tiny:4", "--size", "32", "--methods", "rlt", "--rounds", "1",
            "--batches", "1,2", "--json", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(KeyboardInterrupt):
        script.main()
    printed = capsys.readouterr().out
    saved = json.loads(out.read_text())
    [model] = saved["models"]
    assert [b["batch"] for b in model["batches"]] == [1]
    assert [r["method"] for r in model["batches"][0]["rows"]] == ["dense", "rlt"]
    assert not list(tmp_path.glob("*.tmp"))
    # what was printed as it went is the report of what was saved, and --from-json renders it the same way
    assert printed.rstrip() + "\n" == script.to_markdown(saved)
    assert "Batch 1:" in printed and "Batch 2:" not in printed
    monkeypatch.setattr(sys, "argv", ["overhead_profile.py", "--from-json", str(out)])
    script.main()
    assert capsys.readouterr().out.rstrip() + "\n" == script.to_markdown(saved)
