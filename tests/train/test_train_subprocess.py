"""Runs in other processes: a SIGKILLed run resumes to the same weights; torchrun x2 matches one process."""

from __future__ import annotations

import json
import math
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_script import prepare

from vidslim.train import run_training
from vidslim.train.checkpoint import list_checkpoints

SCRIPT = Path(__file__).with_name("train_script.py")
ROOT = Path(__file__).resolve().parents[2]


def train_records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "train"]


def eval_record(run_dir: Path) -> dict:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    (record,) = [r for r in map(json.loads, lines) if r["kind"] == "eval"]
    return {k: v for k, v in record.items() if k not in ("kind", "step", "stage")}


def final_tensors(run_dir: Path, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
    _, path = list_checkpoints(run_dir)[-1]
    return load_file(str(path / name))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_sigkill_then_restart_ends_with_the_same_weights(tmp_path: Path) -> None:
    # dropout and data noise draw from torch's global generator, so RNG restoring matters; 40 items in
    # batches of 8 make checkpoints land mid-epoch (5 steps per epoch, a checkpoint every 3 steps)
    args = ["--tasks", "cls", "--steps", "21", "--checkpoint-every", "3", "--dropout", "0.3", "--noise", "20",
            "--items", "40"]
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    reference = subprocess.Popen([sys.executable, str(SCRIPT), str(ref_dir), *args], cwd=ROOT)
    victim = subprocess.Popen([sys.executable, str(SCRIPT), str(run_dir), *args, "--sleep", "0.15"], cwd=ROOT)
    deadline = time.monotonic() + 90
    while not list_checkpoints(run_dir / "cls"):
        assert victim.poll() is None, "the run ended before writing a checkpoint"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = list_checkpoints(run_dir / "cls")[-1][0]
    assert killed_at < 21, "the kill came after the end; the test proves nothing"
    subprocess.run([sys.executable, str(SCRIPT), str(run_dir), *args], cwd=ROOT, check=True, timeout=120)
    assert reference.wait(timeout=120) == 0

    summary = json.loads((run_dir / "cls" / "summary.json").read_text())
    assert summary["resumed_from"] is not None and 0 < summary["resumed_from"] < 21
    for name in ("model.safetensors", "optimizer.safetensors"):
        ref, got = final_tensors(ref_dir / "cls", name), final_tensors(run_dir / "cls", name)
        assert ref.keys() == got.keys()
        for key in ref:
            assert torch.equal(ref[key], got[key]), f"{name}:{key} differs after resume"
    ref_log, got_log = train_records(ref_dir / "cls"), train_records(run_dir / "cls")
    assert [r["step"] for r in got_log] == list(range(1, 22))  # nothing logged twice, nothing missing
    assert [r["loss"] for r in got_log] == [r["loss"] for r in ref_log]


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(tmp_path: Path) -> None:
    # global batch 8 with 2 accumulation steps: 2 ranks x micro-batch 2 against 1 process x micro-batch 4
    tasks = ("cls", "ret", "ret-local")
    args = ["--tasks", ",".join(tasks), "--steps", "4", "--accum", "2", "--eval-items", "7"]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(free_port()), str(SCRIPT), str(tmp_path / "ddp"), *args]
    done = subprocess.run(command, cwd=ROOT, timeout=180, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in tasks:
        run_training(*prepare(name, tmp_path / "single" / name, steps=4, accum=2, eval_items=7))
        single, ddp = train_records(tmp_path / "single" / name), train_records(tmp_path / "ddp" / name)
        assert len(single) == len(ddp) == 4
        for a, b in zip(single, ddp, strict=True):
            assert a["loss"] == pytest.approx(b["loss"], abs=1e-5), name
            # equal gradient norms: the DDP-averaged gradient is the single-process gradient (gather scaling)
            assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4), name
        ref, got = final_tensors(tmp_path / "single" / name), final_tensors(tmp_path / "ddp" / name)
        for key in ref:
            torch.testing.assert_close(got[key], ref[key], atol=1e-5, rtol=1e-5)
        # evaluation sharded over the ranks (7 items: 3 + 4), gathered back: the same metrics
        single_eval, ddp_eval = eval_record(tmp_path / "single" / name), eval_record(tmp_path / "ddp" / name)
        assert single_eval.keys() == ddp_eval.keys()
        for key, value in single_eval.items():
            assert ddp_eval[key] == pytest.approx(value, abs=1e-4), (name, key)
        if name.startswith("ret"):
            scale = final_tensors(tmp_path / "ddp" / name, "task.safetensors")["logit_scale"]
            assert float(scale) != pytest.approx(math.log(1 / 0.07))  # the task's temperature trained
    assert eval_record(tmp_path / "ddp" / "ret")["num_texts"] == 14  # two captions per video, encoded by 2 ranks
