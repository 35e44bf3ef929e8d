"""Training checkpoints: safetensors + JSON only (no pickle), written atomically, newest complete one resumed.

A checkpoint is a folder `RUN/checkpoints/step_00001200/` holding
- `model.safetensors`: the model's state dict (all of it, or with checkpoint_weights="trainable" only the
  trainable parameters and the buffers; the frozen rest then comes from the pretrained weights the model is
  built from again);
- `task.safetensors`: the task's own parameters (a learnable temperature), when it has any;
- `optimizer.safetensors`: the optimiser's tensors keyed "param_name::slot" (`vidslim.train.optim`);
- `state.json`: step, stage, epoch, position in the epoch, skipped-video count, RNG states of python /
  numpy / torch / CUDA for every rank, optimiser scalars, grad-scaler state, the run config, the byte
  size and sha256 of every file above, and a sha256 of state.json's own content (`state_sha256`).

Atomicity: everything is written into a hidden temporary folder next to the final one, each file flushed
and fsynced, then the folder is renamed into place with `os.replace` (atomic on POSIX) and the parent
folder fsynced. A crash at any moment leaves either the complete new checkpoint or none (the temporary
folder is removed at the next start), so the previous checkpoint always stays loadable.

Integrity: loading checks the recorded sizes and content hashes (a flipped byte in a weight file would
otherwise resume silently with wrong weights, or NaN on every restart from the optimiser state) and that the
optimiser state is finite; a damaged checkpoint is skipped with a warning naming it, and the next older one is
used. Damaged checkpoints never count towards `keep_checkpoints`: pruning removes them first, and always keeps
the checkpoint just written. Checkpoints written before hashes were recorded (no `sha256` in state.json) are
still resumed after the size check, with a note in the log that their contents could not be verified.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import random
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from vidslim.errors import CheckpointError

log = logging.getLogger(__name__)

FORMAT = "vidslim-train-checkpoint"
VERSION = 1
HASH_KEY = "sha256"  # {file name: hex digest} in state.json
SELF_HASH_KEY = "state_sha256"  # digest of state.json's content without this key
STATE_NAME = "state.json"
MODEL_NAME = "model.safetensors"
TASK_NAME = "task.safetensors"
OPTIMIZER_NAME = "optimizer.safetensors"
_STEP_DIR = re.compile(r"^step_(\d{8,})$")
_TMP_PREFIX = ".tmp-"


def checkpoint_root(run_dir: str | Path) -> Path:
    """The folder holding a run's checkpoints."""
    return Path(run_dir) / "checkpoints"


def step_dir_name(step: int) -> str:
    return f"step_{step:08d}"


# --- RNG states as JSON -------------------------------------------------------------------------------------

def _b64(t: Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def _unb64(text: str) -> Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8).clone()


def _b64_words(words: Any) -> str:
    """32-bit words (a Mersenne Twister state) as base64 text."""
    return base64.b64encode(np.asarray(words, dtype=np.uint32).astype("<u4").tobytes()).decode("ascii")


def _unb64_words(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<u4").astype(np.uint32)


def capture_rng() -> dict[str, Any]:
    """This process's python, numpy, torch (and CUDA) generator states as JSON-able data."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    state: dict[str, Any] = {
        "python": [version, _b64_words(internal), gauss],
        "numpy": [name, _b64_words(keys), int(pos), int(has_gauss), float(cached)],
        "torch": _b64(torch.get_rng_state()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(int(w) for w in _unb64_words(internal)), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, _unb64_words(keys), pos, has_gauss, cached))
    torch.set_rng_state(_unb64(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_unb64(s) for s in state["cuda"]])


# --- writing --------------------------------------------------------------------------------------------------

def _fsync_path(path: Path) -> None:
    """Flush a file's (or folder's) contents to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_tensors(tensors: dict[str, Tensor], path: Path) -> None:
    """safetensors file of CPU copies (copies also untie shared storage, which safetensors refuses)."""
    cpu = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    save_file(cpu, str(path), metadata={"format": "pt"})
    _fsync_path(path)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks (weight files can be large)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _state_digest(meta: dict[str, Any]) -> str:
    """sha256 of the checkpoint metadata without its own digest, in a canonical JSON form."""
    body = {k: v for k, v in meta.items() if k != SELF_HASH_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _write_json(data: dict[str, Any], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def model_tensors(model: nn.Module, which: str = "all") -> dict[str, Tensor]:
    """The state to save: the whole state dict, or ("trainable") trainable parameters plus buffers."""
    state = model.state_dict()
    if which == "all":
        return dict(state)
    keep = {n for n, p in model.named_parameters() if p.requires_grad} | {n for n, _ in model.named_buffers()}
    return {k: v for k, v in state.items() if k in keep}


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    state: dict[str, Any],
    model: dict[str, Tensor],
    optimizer: dict[str, Tensor],
    task: dict[str, Tensor] | None = None,
    keep: int | None = None,
    damaged: set[Path] | frozenset[Path] = frozenset(),
) -> Path:
    """Write checkpoint `step` atomically (module docstring) and prune to `keep` (`prune_checkpoints`, with
    `damaged` the folders a resume found damaged); returns its folder."""
    root = checkpoint_root(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    tmp = root / f"{_TMP_PREFIX}{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        _write_tensors(model, tmp / MODEL_NAME)
        _write_tensors(optimizer, tmp / OPTIMIZER_NAME)
        if task:
            _write_tensors(task, tmp / TASK_NAME)
        written = sorted(tmp.iterdir())
        files = {p.name: p.stat().st_size for p in written}
        hashes = {p.name: file_sha256(p) for p in written}
        meta = {"format": FORMAT, "version": VERSION, "step": int(step), "time": time.time(), "files": files,
                HASH_KEY: hashes, **state}
        meta = json.loads(json.dumps(meta))  # the digest is of what reads back (tuples as lists, ...)
        meta[SELF_HASH_KEY] = _state_digest(meta)
        _write_json(meta, tmp / STATE_NAME)
        _fsync_path(tmp)
        if final.exists():  # the same step saved again (the end of a resumed run): swap it out
            old = root / f"{_TMP_PREFIX}old-{final.name}-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_path(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep is not None:
        prune_checkpoints(run_dir, keep, current=final, damaged=damaged)
    return final


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of the finished checkpoint folders, oldest first (temporary folders ignored)."""
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP_DIR.match(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found)


def prune_checkpoints(run_dir: str | Path, keep: int, current: Path | None = None,
                      damaged: set[Path] | frozenset[Path] = frozenset()) -> None:
    """Keep `current` (the checkpoint just written) and the newest others up to `keep` in all; delete the rest.

    Folders in `damaged` (found unreadable when resuming) are deleted first and never count, so damaged
    checkpoints with higher step numbers cannot crowd out the new ones written after falling back.
    """
    found = list_checkpoints(run_dir)
    bad = {Path(p).resolve() for p in damaged}
    wanted = [p for _, p in found if current is not None and p.resolve() == Path(current).resolve()]
    others = [p for _, p in reversed(found) if p not in wanted and p.resolve() not in bad]
    kept = {p.resolve() for p in [*wanted, *others][:keep]}
    for _, path in found:
        if path.resolve() not in kept:
            if path.resolve() in bad:
                log.warning("removing damaged checkpoint %s", path)
            shutil.rmtree(path, ignore_errors=True)


def clean_temporary(run_dir: str | Path) -> None:
    """Remove temporary folders left by a crash during a save."""
    root = checkpoint_root(run_dir)
    if root.is_dir():
        for path in root.iterdir():
            if path.name.startswith(_TMP_PREFIX):
                shutil.rmtree(path, ignore_errors=True)


# --- reading --------------------------------------------------------------------------------------------------

@dataclass
class LoadedCheckpoint:
    """A checkpoint read back: its folder, state.json, and the tensors of each file."""

    path: Path
    state: dict[str, Any]
    model: dict[str, Tensor]
    optimizer: dict[str, Tensor]
    task: dict[str, Tensor]

    @property
    def step(self) -> int:
        return int(self.state["step"])


def read_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Read and verify one checkpoint folder (format, sizes and hashes, safetensors headers, finite optimiser
    state); CheckpointError names the damage."""
    folder = Path(path)
    state_file = folder / STATE_NAME
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{state_file}: unreadable ({error}); the checkpoint is incomplete") from None
    if state.get("format") != FORMAT:
        raise CheckpointError(f"{folder}: not a vidslim training checkpoint (format {state.get('format')!r})")
    if int(state.get("version", 0)) > VERSION:
        raise CheckpointError(f"{folder}: written by a newer vidslim (format version {state['version']}); upgrade")
    if SELF_HASH_KEY in state and state[SELF_HASH_KEY] != _state_digest(state):
        raise CheckpointError(f"{state_file}: content does not match its recorded sha256 (damaged on disk)")
    for name, size in state.get("files", {}).items():
        file = folder / name
        if not file.is_file() or file.stat().st_size != size:
            raise CheckpointError(f"{file}: missing or truncated (expected {size} bytes)")
    hashes = state.get(HASH_KEY)
    if hashes is None:
        log.info("%s: written before checkpoints recorded content hashes; resuming without verifying its "
                 "contents", folder)
    else:
        for name, digest in hashes.items():
            if file_sha256(folder / name) != digest:
                raise CheckpointError(f"{folder / name}: content does not match its recorded sha256 (damaged on "
                                      "disk)")
    try:
        model = load_file(str(folder / MODEL_NAME))
        optimizer = load_file(str(folder / OPTIMIZER_NAME))
        task = load_file(str(folder / TASK_NAME)) if (folder / TASK_NAME).is_file() else {}
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"{folder}: damaged tensor file ({error})") from None
    bad = first_nonfinite(optimizer)
    if bad is not None:  # Adam moments are never legitimately NaN/inf: a run that diverged before it was saved
        raise CheckpointError(f"{folder / OPTIMIZER_NAME}: {bad} holds NaN or inf values")
    return LoadedCheckpoint(folder, state, model, optimizer, task)


def first_nonfinite(tensors: dict[str, Tensor]) -> str | None:
    """Name of the first floating-point tensor holding NaN or inf, or None (one host sync for all of them)."""
    names = [k for k, v in tensors.items() if v.is_floating_point() and v.numel()]
    if not names:
        return None
    flags = torch.stack([torch.isfinite(tensors[k]).all() for k in names]).tolist()
    return next((k for k, ok in zip(names, flags, strict=True) if not ok), None)


def latest_checkpoint(run_dir: str | Path, damaged: list[Path] | None = None) -> LoadedCheckpoint | None:
    """The newest checkpoint of `run_dir` that reads back intact; damaged ones are skipped with a warning naming
    them (and appended to `damaged` when given, so the caller can prune them)."""
    for _, path in reversed(list_checkpoints(run_dir)):
        try:
            return read_checkpoint(path)
        except CheckpointError as error:
            log.warning("skipping damaged checkpoint %s: %s", path, error)
            if damaged is not None:
                damaged.append(path)
    return None


def load_model_tensors(module: nn.Module, tensors: dict[str, Tensor], where: str, partial: bool) -> None:
    """Copy checkpoint tensors into `module`; partial=True allows keys missing from the file (frozen weights).

    A checkpoint of another model (a different width, say) is one CheckpointError naming the first tensor
    whose shape differs, instead of torch's list of every mismatch.
    """
    own = module.state_dict()
    differ = [k for k, v in own.items() if k in tensors and tuple(tensors[k].shape) != tuple(v.shape)]
    if differ:
        key, more = differ[0], f" (and {len(differ) - 1} more tensors)" if len(differ) > 1 else ""
        raise CheckpointError(f"{where}: {key} was saved with shape {list(tensors[key].shape)} but the model has "
                              f"{list(own[key].shape)}{more}; use a new run_dir or the original model settings")
    result = module.load_state_dict(tensors, strict=False)
    if result.unexpected_keys or (result.missing_keys and not partial):
        raise CheckpointError(f"{where}: does not fit the model (unexpected {result.unexpected_keys[:5]}, missing "
                              f"{result.missing_keys[:5]}); use a new run_dir or the original model settings")


__all__ = ["LoadedCheckpoint", "capture_rng", "checkpoint_root", "clean_temporary", "file_sha256",
           "first_nonfinite", "latest_checkpoint", "list_checkpoints", "load_model_tensors", "model_tensors",
           "prune_checkpoints", "read_checkpoint", "restore_rng", "save_checkpoint"]
