"""One run at a time per run folder: an exclusive `flock` on RUN/.lock, held for the run's whole life.

Two runs writing one folder interleave metrics.jsonl, config.yaml and checkpoints, so the second one must stop
before it writes anything. The lock is `fcntl.flock` on an open file rather than the file's existence: the
kernel drops it when the holding process dies, however it dies (SIGKILL, OOM, a lost node), so a killed run
never leaves a stuck lock behind and no stale-lock clean-up is needed. The file holds the holder's PID, host
and start time, only so the error can say who holds it; it is never deleted (deleting a lock file while
another process has it open would let two runs lock two different files). Platforms without `fcntl` run
unlocked. flock may not work across machines on some network file systems; a run folder on local disk, or
one written by a single node (torchrun's rank 0), is what this guards.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from vidslim.errors import RunLockedError

if TYPE_CHECKING:  # torch is only needed by hold_run_dir: the lock itself stays cheap to import
    from vidslim.train.distributed import DistInfo

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"


class RunLock:
    """The exclusive lock of one run folder; `acquire` it before writing, `release` (or exit the process) after."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def holder(self) -> dict[str, Any]:
        """What the current holder wrote into the lock file (empty when unreadable)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def acquire(self) -> RunLock:
        """Take the lock without waiting; RunLockedError naming the holder's PID when another run has it."""
        if self._file is not None:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if fcntl is None:
            log.warning("no fcntl on this platform: %s is not locked against a second run", self.run_dir)
            return self
        f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115  # kept open for the run's life
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            who = self.holder()
            pid, host = who.get("pid", "?"), who.get("host", "?")
            raise RunLockedError(f"{self.run_dir} is in use by another training run (pid {pid} on {host}); wait "
                                 f"for it to finish, stop it, or use another run_dir") from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}) + "\n")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        """Drop the lock (the file stays; its content no longer names a holder)."""
        if self._file is None:
            return
        f, self._file = self._file, None
        try:
            f.seek(0)
            f.truncate()
            f.flush()
        finally:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            f.close()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


#: run folders this process owns through `hold_run_dir`, and how many blocks hold each
_OWNED: dict[Path, int] = {}


@contextmanager
def hold_run_dir(run_dir: str | Path, info: DistInfo) -> Iterator[None]:
    """Own `run_dir` for the block: rank 0 takes the lock, and every rank raises the same RunLockedError when it
    cannot (so no rank waits at a collective for one that stopped).

    Nested blocks on the same folder in one process share the outer block's lock, so a command can own its run
    folder from the config to the last file it writes while `run_training` inside it holds it as well."""
    from vidslim.train.distributed import broadcast_object

    key = Path(run_dir).resolve()
    if key in _OWNED:  # every rank registered it together, so every rank takes this branch together
        _OWNED[key] += 1
        try:
            yield
        finally:
            _OWNED[key] -= 1
        return
    lock = RunLock(run_dir)
    problem: str | None = None
    if info.is_main:
        try:
            lock.acquire()
        except RunLockedError as error:
            problem = str(error)
    problem = broadcast_object(problem, info)  # type: ignore[assignment]
    if problem is not None:
        raise RunLockedError(problem)
    _OWNED[key] = 1
    try:
        yield
    finally:
        del _OWNED[key]
        lock.release()


__all__ = ["LOCK_NAME", "RunLock", "hold_run_dir"]
