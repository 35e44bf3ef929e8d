"""Opening videos with PyAV, turning every failure into a `VideoDecodeError` that names the file and the cause.

Everything else in `vidslim.io` reaches FFmpeg through `open_video`, so a missing file, an empty file, a text
file named `.mp4`, random bytes, a truncated container or an audio-only file each give one clear error instead
of a PyAV traceback. The container is always closed, also when the caller raises.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

import av
import av.container
import av.video.stream

from vidslim.errors import NoVideoStreamError, VideoDecodeError, VideoNotFoundError
from vidslim.io.paths import special_kind

# bytes looked at to tell a text file from a binary one
_SNIFF_BYTES = 512


@dataclass
class OpenVideo:
    """An open container and its video stream."""

    path: str
    container: av.container.InputContainer
    stream: av.video.stream.VideoStream
    touched: bool = False  # packets were read: reading from the start again needs a seek

    @property
    def time_base(self) -> Fraction:
        """Seconds per timestamp tick of the stream (FFmpeg's stream time base)."""
        return self.stream.time_base or Fraction(1, 1_000_000)

    @property
    def rate(self) -> Fraction | None:
        """Average frame rate, falling back on FFmpeg's guess; None when the container says nothing."""
        for rate in (self.stream.average_rate, self.stream.guessed_rate, self.stream.base_rate):
            if rate is not None and rate > 0:
                return Fraction(rate)
        return None


def check_file(path: str | os.PathLike[str]) -> str:
    """Fail early and precisely on paths FFmpeg would only call 'invalid data' (or wait on forever): missing, a
    name the system refuses, a folder, a FIFO or device, empty, text."""
    name = os.fspath(path)
    try:
        mode = os.stat(name).st_mode
    except FileNotFoundError:
        raise VideoNotFoundError(name, "no such file", "check the path") from None
    except OSError as error:  # a name too long, a component that is a file, no permission
        raise VideoNotFoundError(name, f"cannot be opened: {error.strerror}", "check the path") from None
    if stat.S_ISDIR(mode):
        raise VideoNotFoundError(name, "is a directory, not a video file", "pass a video file")
    kind = special_kind(mode)
    if kind is not None:
        raise VideoNotFoundError(name, f"is {kind}, not a video file", "pass a regular video file")
    if os.path.getsize(name) == 0:
        raise VideoDecodeError(name, "the file is empty (0 bytes)", "re-download or re-encode it")
    try:
        with open(name, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as error:
        raise VideoDecodeError(name, f"cannot be read: {error.strerror}", "check its permissions") from None
    if _looks_like_text(head):
        raise VideoDecodeError(
            name, "is a text file, not a video", "pass the video itself, not a list or a download error page"
        )
    return name


# text formats FFmpeg reads as video: playlists, concat lists, raw YUV4MPEG2 (a text header, then pixels)
_TEXT_INPUTS = (b"#EXTM3U", b"ffconcat", b"YUV4MPEG2")


def _looks_like_text(head: bytes) -> bool:
    """True when the first bytes are printable UTF-8 text that is not one of FFmpeg's text inputs."""
    if b"\x00" in head or head.lstrip().startswith(_TEXT_INPUTS):
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character cut at the end of the sniffed block is still text
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return len(text) > 0 and printable / len(text) > 0.95


def ffmpeg_reason(error: av.FFmpegError) -> str:
    """FFmpeg's own words for an error, without PyAV's errno and file name decoration."""
    return str(error.strerror or error).rstrip(".")


@contextmanager
def open_video(path: str | os.PathLike[str], threads: bool | int = True) -> Iterator[OpenVideo]:
    """Open `path`, pick its video stream and yield both; close the container however the block ends.

    PyAV errors raised inside the block become `VideoDecodeError` naming the file. `threads`: True turns on
    FFmpeg's frame and slice decoding threads, as many as cores; an int sets how many (worth limiting in
    DataLoader workers, which already run in parallel); False or 1 decodes on the calling thread.
    """
    name = check_file(path)
    try:
        container = av.open(name, mode="r", metadata_errors="replace")
    except av.error.InvalidDataError as error:
        raise VideoDecodeError(
            name,
            "FFmpeg cannot read it as a video container (invalid data)",
            "the file is truncated, corrupt or not a video: re-download or re-encode it",
        ) from error
    except av.FFmpegError as error:
        raise VideoDecodeError(name, f"FFmpeg cannot open it: {ffmpeg_reason(error)}") from error
    try:
        with container:
            stream = _video_stream(name, container)
            if threads is True or (not isinstance(threads, bool) and threads > 1):
                stream.thread_type = "AUTO"
                stream.thread_count = 0 if threads is True else int(threads)
            try:
                yield OpenVideo(name, container, stream)
            except av.FFmpegError as error:
                raise VideoDecodeError(name, f"decoding failed: {ffmpeg_reason(error)}") from error
    except av.FFmpegError as error:  # raised while closing
        raise VideoDecodeError(name, f"FFmpeg failed closing it: {ffmpeg_reason(error)}") from error


def _video_stream(name: str, container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The first real video stream: cover art (an 'attached picture' in audio files) does not count.

    The other streams are marked discarded, so demuxers that can skip their packets (mp4) do not read them.
    """
    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    for stream in videos:
        if stream.codec_context is not None:
            for other in container.streams:
                if other.index != stream.index:
                    other.discard = av.stream.Discard.all
            return stream
    if videos:
        raise VideoDecodeError(
            name, f"this FFmpeg build has no decoder for its video codec ({videos[0].codec.name})",
            "re-encode it to H.264, e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`"
        )
    kinds = sorted({s.type for s in container.streams}) or ["no streams at all"]
    raise NoVideoStreamError(
        name, f"holds no video stream (found: {', '.join(kinds)})", "pass a file that contains video"
    )


def no_frame_error(path: str, num_errors: int) -> VideoDecodeError:
    """The error for a video stream from which not one frame could be decoded."""
    detail = f"{num_errors} packets failed to decode" if num_errors else "the video stream holds no frames"
    return VideoDecodeError(path, f"no decodable video frame ({detail})",
                            "the file is corrupt or truncated: re-encode or re-download it")


def frame_rotation(frame: av.VideoFrame) -> int:
    """Counter-clockwise rotation (0, 90, 180 or -90 degrees) the display matrix asks for to show `frame` upright."""
    try:
        angle = frame.rotation
    except (AttributeError, ValueError):
        return 0
    return normalize_rotation(angle)


def normalize_rotation(angle: float) -> int:
    """Round an angle to the nearest multiple of 90 and map it into (-180, 180]."""
    quarter = round(angle / 90) % 4
    return (0, 90, 180, -90)[quarter]
