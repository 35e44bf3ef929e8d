"""The rule for unreadable videos in a job: a broken video inside a collection is skipped, named and counted, but a
job that could read none of its videos is an error (exit 2 on the command line), not an empty success.

The error names the first failure and the count, as one line: "none of the 3 video(s) could be read: a.mp4: the file
is empty (0 bytes) (...)", so a wrong folder, a list of bad paths or a single broken file is noticed at once.
"""

from __future__ import annotations

from collections.abc import Mapping

from vidslim.errors import VidslimError, printable


class NothingReadError(VidslimError):
    """Every video a job was given failed to read; `failed` maps each path to its reason."""

    def __init__(self, failed: Mapping[str, str]) -> None:
        self.failed = dict(failed)
        first = min(self.failed)
        super().__init__(f"none of the {len(self.failed)} video(s) could be read: {printable(first)}: "
                         f"{short_reason(first, self.failed[first])}")


def short_reason(path: str, reason: str) -> str:
    """`reason` without the error type and the path it repeats ("VideoDecodeError: a.mp4: empty" -> "empty")."""
    shown = printable(path)
    text = reason
    kind, sep, rest = text.partition(": ")
    if sep and kind.isidentifier() and rest.startswith((shown, path)):
        text = rest
    for prefix in (shown, path):
        if text.startswith(prefix + ": "):
            return text[len(prefix) + 2:]
    return text


def require_some_read(videos: int, failed: Mapping[str, str]) -> None:
    """Raise `NothingReadError` when a job was given `videos` > 0 videos and `failed` (path -> reason, the job's
    own videos only) holds every one of them."""
    if videos > 0 and len(failed) >= videos:
        raise NothingReadError(failed)


__all__ = ["NothingReadError", "require_some_read", "short_reason"]
