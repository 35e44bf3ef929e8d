"""Shared by the `vidslim train` / `vidslim eval` tests: run the command in-process, write tiny run configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import vidslim.cli.main as cli_main

# 20 synthetic videos of 4 frames at 32 px (16 train, 4 test): generated once per session by the first run
SYNTH = {"num_videos": 20, "fps": 4, "seconds": 1, "size": 32, "seed": 0}


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    """`vidslim ARGS...` in-process with `train` and `eval` registered: (exit status, stdout, stderr)."""
    commands = tuple(c for c in ("train", "evaluate") if c not in cli_main._COMMANDS)
    monkeypatch.setattr(cli_main, "_COMMANDS", (*cli_main._COMMANDS, *commands))
    status = cli_main.main([str(a) for a in args])
    out = capsys.readouterr()
    return status, out.out, out.err


def write_config(path: Path, run_dir: Path, synth_dir: Path, kind: str, **top: Any) -> Path:
    """A tiny run config: videomae-tiny with RLT (classify) or clip-tiny with TempMe (retrieval)."""
    if kind == "classify":
        model = {"name": "videomae-tiny", "config": {"image_size": 32, "patch_size": 16, "num_frames": 4},
                 "reduction": [{"rlt": {"tau": 0.1, "length_embed": True}}]}
    else:
        model = {"name": "clip-tiny", "config": {"image_size": 32, "num_frames": 4},
                 "reduction": [{"tempme": {"r": 1, "merge_layers": [1], "groups": [2]}}]}
    config = {
        "run_dir": str(run_dir), "seed": 0, "steps": 6, "batch_size": 4, "lr": 2e-3, "warmup_ratio": 0.2,
        "log_every": 1, "checkpoint_every": 2, "model": model,
        "data": {"name": "synthetic", "video_root": str(synth_dir), "frames": 4, "size": 32, "cache": True,
                 "synthetic": SYNTH},
        **top,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def records(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    """The records of one kind in RUN/metrics.jsonl."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == kind]
