"""Checking the paths a command writes to before any work is done, so a wrong one is one clear line, not a
traceback at the end of a long run.

`output_folder` creates a folder (and its parents: the user named a folder to write into); `output_file` does
not create folders: a picture or report asked for in a folder that does not exist is usually a typo.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vidslim.errors import ConfigError, printable


def output_folder(path: str | os.PathLike[str], what: str) -> Path:
    """The folder `path`, created when missing; `ConfigError` naming `what` (e.g. "--out") when it is a file or
    cannot be created."""
    folder = Path(path)
    shown = printable(folder)
    if _kind(folder, what) == "other":
        raise ConfigError(f"{what} {shown}: is a file, not a folder; pass a folder to write into (or remove the file)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"{what} {shown}: cannot create the folder ({error.strerror}); pass a folder you can "
                          "write to") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {shown}: the folder is not writable; pass a folder you can write to")
    return folder


def output_file(path: str | os.PathLike[str], what: str) -> Path:
    """`path` as a file to write: its folder must exist and it must not be a folder; `ConfigError` naming `what`."""
    file = Path(path)
    shown = printable(file)
    parent = file.parent
    if len(os.fsencode(file.name)) > 255:
        raise ConfigError(f"{what} {shown}: the file name is longer than 255 bytes; pass a shorter name")
    if _kind(file, what) == "folder":
        raise ConfigError(f"{what} {shown}: is a folder; name a file inside it, e.g. {printable(file / 'out.png')}")
    parent_kind = _kind(parent, what)
    if parent_kind != "folder":
        kind = "is a file, not a folder" if parent_kind == "other" else "does not exist"
        raise ConfigError(f"{what} {shown}: the folder {printable(parent)} {kind}; create it first or name a file "
                          "in an existing folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {shown}: the folder {printable(parent)} is not writable")
    return file


def special_kind(mode: int) -> str | None:
    """What a path of stat `mode` is when it is neither a regular file nor a folder ("a FIFO (named pipe)", "a
    socket", "a device"), else None. Reading one blocks until a writer comes (a FIFO) or never ends (/dev/zero), so
    every reader of user files (videos, checkpoints) asks this before opening."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"


def _kind(path: Path, what: str) -> str:
    """"missing", "folder" or "other" (a file, a FIFO, ...); `ConfigError` when the system refuses the name."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as error:  # a name too long, no permission to look
        raise ConfigError(f"{what} {printable(path)}: {error.strerror}; pass another path") from None
    return "folder" if stat.S_ISDIR(mode) else "other"
