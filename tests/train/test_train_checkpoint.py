"""Checkpoints: atomic writes, no pickle, keep-last-K, RNG and optimiser state round trips, in-process resume."""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from train_tiny import TinyClassifier, TinyDualEncoder, config, factory

import vidslim.train.checkpoint as ckpt
from vidslim.errors import CheckpointError
from vidslim.tasks.classification import ClassificationTask
from vidslim.tasks.retrieval import RetrievalTask
from vidslim.train import run_training
from vidslim.train.optim import build_optimizer, decay_split, export_state, import_state


def save_step(run_dir: Path, step: int, value: float) -> Path:
    model = {"w": torch.full((2, 2), value)}
    return ckpt.save_checkpoint(run_dir, step, {"stage": 0}, model, {"w::exp_avg": torch.zeros(2, 2)})


def test_crash_while_writing_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_step(tmp_path, 1, 1.0)
    real_write = ckpt._write_tensors
    calls = []

    def dies_on_second_file(tensors: dict, path: Path) -> None:
        calls.append(path.name)
        if len(calls) == 2:
            path.write_bytes(b"half a file")
            raise KeyboardInterrupt("killed mid-write")
        real_write(tensors, path)

    monkeypatch.setattr(ckpt, "_write_tensors", dies_on_second_file)
    with pytest.raises(KeyboardInterrupt):
        save_step(tmp_path, 2, 2.0)
    monkeypatch.undo()
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [1]
    loaded = ckpt.latest_checkpoint(tmp_path)
    assert loaded is not None and loaded.step == 1 and float(loaded.model["w"][0, 0]) == 1.0
    assert not [p for p in ckpt.checkpoint_root(tmp_path).iterdir() if p.name.startswith(".tmp")]


def test_leftovers_and_damaged_checkpoints_are_skipped(tmp_path: Path) -> None:
    save_step(tmp_path, 1, 1.0)
    save_step(tmp_path, 2, 2.0)
    # a hard kill mid-save leaves a temporary folder: never taken for a checkpoint, cleaned at the next start
    leftover = ckpt.checkpoint_root(tmp_path) / ".tmp-step_00000003-999"
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"partial")
    # a newer checkpoint damaged behind our back: truncated weights
    damaged = save_step(tmp_path, 4, 4.0)
    with open(damaged / ckpt.MODEL_NAME, "r+b") as f:
        f.truncate(20)
    with pytest.raises(CheckpointError, match="truncated"):
        ckpt.read_checkpoint(damaged)
    loaded = ckpt.latest_checkpoint(tmp_path)
    assert loaded is not None and loaded.step == 2
    ckpt.clean_temporary(tmp_path)
    assert not leftover.exists()


def test_keep_last_k_and_nothing_but_safetensors_and_json(tmp_path: Path) -> None:
    torch.manual_seed(0)
    task = RetrievalTask(logit_scale=2.0, learnable=True)
    run_training(config(tmp_path, steps=5, checkpoint_every=1, keep_checkpoints=2), TinyDualEncoder(), task,
                 factory(16))
    steps = [s for s, _ in ckpt.list_checkpoints(tmp_path)]
    assert steps == [4, 5]
    files = [p for p in ckpt.checkpoint_root(tmp_path).rglob("*") if p.is_file()]
    assert {p.name for p in files} == {"model.safetensors", "optimizer.safetensors", "task.safetensors", "state.json"}
    for path in files:
        head = path.read_bytes()[:2]
        assert head[:1] != b"\x80" and head != b"PK"  # neither a pickle nor a torch zip archive
        if path.suffix == ".json":
            json.loads(path.read_text())
        else:
            with safe_open(str(path), "pt") as f:
                assert list(f.keys())
    loaded = ckpt.latest_checkpoint(tmp_path)
    assert loaded is not None and set(loaded.task) == {"logit_scale"}
    assert "model.video.proj.weight::exp_avg" in loaded.optimizer and "task.logit_scale::step" in loaded.optimizer
    assert loaded.state["total_steps"] == 5


def test_rng_states_round_trip() -> None:
    state = json.loads(json.dumps(ckpt.capture_rng()))  # through JSON, as on disk
    first = (random.random(), float(np.random.rand()), float(torch.rand(())))
    ckpt.restore_rng(state)
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == first


def test_optimizer_state_by_name_survives_a_rebuild() -> None:
    torch.manual_seed(0)
    model = TinyClassifier()

    def make() -> torch.optim.AdamW:
        decay, no_decay = decay_split(model)
        return build_optimizer([(decay, 0.1), (no_decay, 0.0)], 1e-2, (0.9, 0.999), 1e-6)

    first = make()
    model(torch.rand(4, 2, 3, 8, 8)).sum().backward()
    first.step()
    tensors, scalars = export_state(first)
    second = make()
    import_state(second, tensors, scalars)
    for a, b in zip(first.param_groups, second.param_groups, strict=True):
        for p, q in zip(a["params"], b["params"], strict=True):
            assert p is q
            for slot in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(first.state[p][slot], second.state[q][slot])
    with pytest.raises(CheckpointError, match="not trainable"):
        import_state(second, {"ghost.weight::exp_avg": torch.zeros(1)}, {})


def test_restart_in_process_resumes_from_the_last_checkpoint(tmp_path: Path) -> None:
    def run(folder: str, steps_done_hook: int | None) -> dict:
        torch.manual_seed(3)
        model = TinyClassifier(dropout=0.2)

        def stop(step: int, record: dict) -> None:
            if step == steps_done_hook:
                raise RuntimeError("simulated crash")

        cfg = config(tmp_path / folder, steps=7, checkpoint_every=2)
        with contextlib.suppress(RuntimeError):  # the simulated crash
            run_training(cfg, model, ClassificationTask(), factory(24, noise=10.0), on_step=stop)
        return model.state_dict()

    reference = run("ref", None)
    run("crash", 5)  # crashes after step 5: the checkpoint of step 4 is the newest
    assert ckpt.latest_checkpoint(tmp_path / "crash").step == 4  # type: ignore[union-attr]
    resumed = run("crash", None)
    for key, value in reference.items():
        assert torch.equal(value, resumed[key]), key
    summary = json.loads((tmp_path / "crash" / "summary.json").read_text())
    assert summary["resumed_from"] == 4 and summary["steps"] == 7
