"""Clean up after a killed `save_model`: the `.model-tmp-<pid>` folders it left beside its target.

`save_model` writes into a temporary folder named after its process id and renames it into place, so a reader
never sees half a checkpoint; a process killed mid-write leaves the temporary folder behind. Such a folder is
stale when its process is gone and nothing in it has changed for `min_age_s` seconds: the age keeps a folder
written by a live process that this machine cannot see (another container sharing the disk) from being taken.
Links are never followed, and the calling process's own folders are never touched.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

logger = logging.getLogger(__name__)

#: the name of a save's temporary folder is this prefix followed by the process id
TEMP_PREFIX = ".model-tmp-"


def temp_folder_pid(path: Path, prefix: str = TEMP_PREFIX) -> int | None:
    """The process id in a temporary folder's name (`.model-tmp-1234` or `.model-tmp-1234-<anything>`), or None."""
    if not path.name.startswith(prefix):
        return None
    head = path.name[len(prefix) :].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def process_alive(pid: int) -> bool:
    """True when process `pid` exists on this machine, or when that cannot be told (then nothing is removed)."""
    if pid <= 0 or os.name == "nt":  # on Windows os.kill(pid, 0) would send CTRL_C_EVENT, not probe
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists under another user
        return True
    return True


def _last_change(folder: Path) -> float:
    """The latest modification time of the folder and the entries directly in it (links not followed)."""
    times = [folder.lstat().st_mtime]
    for entry in os.scandir(folder):
        times.append(entry.stat(follow_symlinks=False).st_mtime)
    return max(times)


def remove_stale_temp_folders(parent: str | Path, prefix: str = TEMP_PREFIX, min_age_s: float = 60.0) -> list[Path]:
    """Remove the temporary folders in `parent` whose process is dead and that are older than `min_age_s`.

    Returns the folders removed; a folder that cannot be removed is logged and left."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    removed: list[Path] = []
    now = time.time()
    for path in sorted(parent.iterdir()):
        pid = temp_folder_pid(path, prefix)
        if pid is None or pid == os.getpid() or path.is_symlink() or not path.is_dir() or process_alive(pid):
            continue
        try:
            if now - _last_change(path) < min_age_s:
                continue
            shutil.rmtree(path)
        except OSError as error:
            logger.warning("could not remove %s, left by a killed save (%s); remove it by hand", path, error)
            continue
        logger.info("removed %s, left by a save that was killed (process %d)", path, pid)
        removed.append(path)
    return removed


__all__ = ["TEMP_PREFIX", "process_alive", "remove_stale_temp_folders", "temp_folder_pid"]
