"""Where compiled kernels are kept, and the checks that make loading one safe.

A compiled kernel is native code that `dlopen` runs as it loads (its constructors) with all of this process's
rights, so it is loaded only from a folder that this user alone can write: the folder is ours with no group or
other write bit, every folder above it is ours or root's and not writable by others (or sticky, as /tmp is, so
that nobody else can rename our folder away), and the file itself is a regular file of ours that nobody else can
write. A folder that fails is refused, never repaired: someone else may already have planted a library there.

A build is installed atomically and durably (written beside its final name, fsynced, renamed, folder fsynced)
with its SHA-256 in `<name>.sha256` beside it. A file whose checksum is missing or wrong (a build cut short by a
crash or a full disk) is rebuilt instead of loaded: mapping a truncated library crashes the process with a bus
error, which no `try` can catch.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path


class UnsafeFolder(Exception):
    """A kernel folder that someone other than this user could write (the message says which and why)."""


def cache_dir() -> Path:
    """Where compiled kernels are kept: $VIDSLIM_CACHE_DIR, else $XDG_CACHE_HOME/vidslim, else ~/.cache/vidslim."""
    if os.environ.get("VIDSLIM_CACHE_DIR"):
        return Path(os.environ["VIDSLIM_CACHE_DIR"]) / "kernels"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vidslim" / "kernels"


def fallback_dir() -> Path:
    """A per-user build folder in the temporary directory, for when the cache folder cannot be written."""
    return Path(tempfile.gettempdir()) / f"vidslim-kernels-{_user()}"


def _user() -> int:
    """The effective user id: the owner of every file this process creates."""
    return os.geteuid() if hasattr(os, "geteuid") else -1


def _folder_problem(path: Path, info: os.stat_result, leaf: bool) -> str | None:
    """Why `path` (the kernel folder itself when `leaf`, else one above it) lets someone else in, or None."""
    user = _user()
    mode = stat.S_IMODE(info.st_mode)
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a folder"
    if leaf:
        if info.st_uid != user:
            return f"{path} is owned by uid {info.st_uid}, not by this user (uid {user})"
        if mode & 0o022:
            return f"{path} is writable by group or others (mode {mode:o}; chmod 700 it)"
        return None
    if info.st_uid not in (user, 0):
        return f"{path}, a folder above it, is owned by uid {info.st_uid}, neither this user (uid {user}) nor root"
    if mode & 0o022 and not mode & stat.S_ISVTX:
        return f"{path}, a folder above it, is writable by group or others (mode {mode:o}) without the sticky bit"
    return None


def check_folder(folder: Path) -> Path:
    """`folder` with its links resolved, after checking that only this user can write it (see the module doc).

    Raises UnsafeFolder saying which folder fails and why, OSError when it cannot be read.
    """
    if _user() < 0:
        raise UnsafeFolder(f"{folder}: no file ownership to check on this system")
    resolved = Path(os.path.realpath(folder))
    problem = _folder_problem(resolved, os.lstat(resolved), leaf=True)
    for parent in resolved.parents:
        problem = problem or _folder_problem(parent, os.stat(parent), leaf=False)
    if problem is not None:
        raise UnsafeFolder(problem)
    return resolved


def private_folder(folder: Path) -> Path:
    """`folder`, created with mode 700 (and any missing folder above it) if it is not there, then checked by
    `check_folder`. Raises UnsafeFolder, or OSError when it cannot be created."""
    missing = []
    for path in (folder, *folder.parents):
        if os.path.lexists(path):
            break
        missing.append(path)
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made by a process beside us: checked like any existing folder
            os.mkdir(path, 0o700)
    return check_folder(folder)


def checksum_file(library: Path) -> Path:
    """The file beside `library` that holds its SHA-256."""
    return library.with_name(library.name + ".sha256")


def _file_problem(path: Path) -> str | None:
    """Why `path` is not a regular file of ours that nobody else can write, or None."""
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_uid != _user():
        return f"owned by uid {info.st_uid}, not by this user (uid {_user()})"
    if info.st_mode & 0o022:
        return f"writable by group or others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def damage(library: Path) -> str | None:
    """Why the compiled `library` must not be loaded (missing, not ours, no or a wrong checksum), or None when it
    is intact. Its folder is checked separately (`check_folder`)."""
    try:
        for path in (library, checksum_file(library)):
            problem = _file_problem(path)
            if problem is not None:
                return f"{path.name}: {problem}"
        expected = checksum_file(library).read_text().strip()
        actual = hashlib.sha256(library.read_bytes()).hexdigest()
    except FileNotFoundError as error:
        return f"{Path(error.filename or library).name} is missing"
    except (OSError, UnicodeDecodeError) as error:
        return f"unreadable ({error})"
    if actual != expected:
        return f"{library.name} does not match its checksum (damaged or cut short)"
    return None


def install(partial: Path, target: Path) -> None:
    """Move the freshly built `partial` to `target` for good: flushed to disk, its checksum written beside it, both
    renamed into place (atomic: a process reading meanwhile sees the old file or the new one), the folder flushed.

    The library goes first and its checksum last, so a crash in between leaves a file whose checksum is missing or
    stale, which is rebuilt rather than loaded.
    """
    os.chmod(partial, 0o755)
    with open(partial, "r+b") as file:
        digest = hashlib.sha256(file.read()).hexdigest()
        os.fsync(file.fileno())
    sums = checksum_file(partial)
    descriptor = os.open(sums, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        os.write(descriptor, f"{digest}\n".encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(partial, target)
    os.replace(sums, checksum_file(target))
    _sync_folder(target.parent)


def _sync_folder(folder: Path) -> None:
    """Flush the folder's entries (the renames) to disk, where the system allows it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:  # some file systems refuse fsync on a folder
        pass
    finally:
        os.close(descriptor)
